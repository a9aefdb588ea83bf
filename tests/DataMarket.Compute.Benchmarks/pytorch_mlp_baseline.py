"""Baseline for `datamarket bench compute`: the same MLP training step in PyTorch's CPU build.

Benchmark-only; PyTorch is never a dependency of the product. Mirrors ComputeBenchmark.MeasureMlp:
256-512-512-10 ReLU MLP, float32, AdamW (lr 1e-3, weight decay 0.01), batch 256, cross-entropy,
2 warm-up steps, then timed steps (median step time). Usage: python3 pytorch_mlp_baseline.py [steps] [threads]
"""
import sys
import time

import torch

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
if len(sys.argv) > 2:
    torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(1)
batch, width, hidden, classes = 256, 256, 512, 10
features = torch.randn(batch * 8, width)
labels = torch.randint(0, classes, (batch * 8,))
model = torch.nn.Sequential(
    torch.nn.Linear(width, hidden), torch.nn.ReLU(),
    torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
    torch.nn.Linear(hidden, classes))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
loss_fn = torch.nn.CrossEntropyLoss()


def step(i):
    start = (i * batch) % features.shape[0]
    x, y = features[start:start + batch], labels[start:start + batch]
    optimizer.zero_grad(set_to_none=False)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()


for i in range(2):
    step(i)
times = []
for i in range(steps):
    begin = time.perf_counter()
    step(i)
    times.append(time.perf_counter() - begin)
# Median step time, as ComputeBenchmark reports: robust to other tenants on a shared machine.
median = sorted(times)[len(times) // 2]
print(f"pytorch {torch.__version__} threads {torch.get_num_threads()}: mlp {batch / median:.1f} examples/s "
      f"({median * 1e3:.1f} ms/step median, batch {batch})")
