"""Independent reference: the proxy models written in PyTorch (Debian python3-torch), trained a few steps.

usage: pytorch_models.py mlp|gpt OUT_DIR
Writes OUT_DIR/model.pt (torch.save of the state dict) and OUT_DIR/reference.json with the inputs and PyTorch's
forward outputs on them, for the C# side to load the checkpoint and compare its own forward pass.
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self, inputs, hidden, outputs):
        super().__init__()
        layers, width = [], inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, context, layers, heads, width, vocab=256):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens, valid):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t))
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        mask = (causal.unsqueeze(0) & valid.unsqueeze(1)).unsqueeze(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.lm_head(self.ln_f(x))


def main():
    kind, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(7)
    if kind == "mlp":
        model = Mlp(5, [16, 8], 3)
        x = torch.randn(40, 5)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        step = lambda: F.cross_entropy(model(x), y)
    else:
        model = Gpt(context=12, layers=2, heads=2, width=16)
        lengths = torch.tensor([12, 7, 3, 10])
        x = torch.randint(0, 256, (4, 12))
        valid = torch.arange(12).unsqueeze(0) < lengths.unsqueeze(1)
        x = torch.where(valid, x, torch.zeros_like(x))
        targets = torch.where(valid[:, 1:], x[:, 1:], torch.full_like(x[:, 1:], -100))
        step = lambda: F.cross_entropy(model(x, valid)[:, :-1].reshape(-1, 256), targets.reshape(-1), ignore_index=-100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        step().backward()
        optimizer.step()
    torch.save(model.state_dict(), f"{out}/model.pt")
    with torch.no_grad():
        if kind == "mlp":
            reference = {"inputs": x.tolist(), "outputs": model(x).tolist()}
        else:
            reference = {"tokens": x.tolist(), "valid": valid.tolist(), "outputs": model(x, valid).tolist()}
    with open(f"{out}/reference.json", "w") as f:
        json.dump(reference, f)


if __name__ == "__main__":
    main()
