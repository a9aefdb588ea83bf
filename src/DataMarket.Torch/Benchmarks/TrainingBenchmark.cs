using System.Diagnostics;
using System.Globalization;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Benchmarks;

/// <summary>One training-throughput measurement: median step time over the timed steps.</summary>
public sealed record TrainingMeasurement(string Model, string Engine, string Shape, int BatchSize, double SecondsPerStep)
{
    public double ExamplesPerSecond => BatchSize / SecondsPerStep;
}

/// <summary>
/// Proxy-model training throughput on TorchSharp at fixed sizes (AdamW, random data), and the same steps in Debian's
/// python3-torch run in the same command as the baseline: MLP 256-512-512-10 with batch 256, byte GPT with 2 layers,
/// 4 heads, width 128, context 64 and batch 16. Both use one intra-op thread (our fixed setting).
/// </summary>
public static class TrainingBenchmark
{
    public const int MlpBatch = 256, GptBatch = 16;
    public static readonly ModelConfig Mlp = ModelConfig.ForMlp(256, [512, 512], 10);
    public static readonly ModelConfig Gpt = ModelConfig.ForGpt(contextLength: 64, layers: 2, heads: 4, width: 128);

    public static IReadOnlyList<TrainingMeasurement> MeasureTorch(int steps)
    {
        using var scope = NewDisposeScope();
        using var generator = new torch.Generator(2);
        var results = new List<TrainingMeasurement>();

        var mlp = new TabularMlp(Mlp);
        SeededInitialization.Apply(mlp, 1);
        var features = torch.randn(MlpBatch, 256, generator: generator);
        var labels = torch.randint(0, 10, [MlpBatch], dtype: int64, generator: generator);
        results.Add(new TrainingMeasurement("mlp", "torchsharp", "256-512-512-10", MlpBatch,
            Time(mlp, steps, () => nn.functional.cross_entropy(mlp.forward(features), labels))));

        var gpt = new ByteGpt(Gpt);
        SeededInitialization.Apply(gpt, 1);
        var tokens = torch.randint(97, 123, [GptBatch, 64], dtype: int64, generator: generator);
        var valid = torch.ones(GptBatch, 64, dtype: @bool);
        var targets = ProxyTraining.NextTokenTargets(tokens, valid);
        results.Add(new TrainingMeasurement("gpt", "torchsharp", "layers 2, heads 4, width 128, context 64", GptBatch,
            Time(gpt, Math.Max(3, steps / 3), () => nn.functional.cross_entropy(gpt.forward(tokens, valid).flatten(0, 1), targets.flatten(), ignore_index: -100))));
        return results;
    }

    // Two warm-up steps, then the median of the timed steps (a shared machine's bursts spoil the mean).
    private static double Time(nn.Module model, int steps, Func<Tensor> loss)
    {
        model.train();
        using var optimizer = optim.AdamW(model.parameters(), 1e-3);
        var times = new List<double>();
        for (var step = -2; step < steps; step++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                optimizer.zero_grad();
                loss().backward();
                optimizer.step();
            }

            if (step >= 0)
            {
                times.Add(clock.Elapsed.TotalSeconds);
            }
        }

        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>
    /// The same two models and steps in python3-torch (<paramref name="python"/>, Debian's /usr/bin/python3 with
    /// python3-torch); null with the reason when it cannot run.
    /// </summary>
    public static (IReadOnlyList<TrainingMeasurement>? Results, string? Problem) MeasurePython(string python, int steps)
    {
        var script = Path.Combine(Path.GetTempPath(), $"datamarket-bench-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, PythonScript);
        try
        {
            var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(script);
            start.ArgumentList.Add(steps.ToString(CultureInfo.InvariantCulture));
            using var process = Process.Start(start);
            if (process is null)
            {
                return (null, $"{python} did not start");
            }

            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                return (null, $"{python} failed ({process.ExitCode}): {error.Trim().Split('\n').LastOrDefault()}");
            }

            var results = new List<TrainingMeasurement>();
            foreach (var line in output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ');
                var seconds = double.Parse(parts[1], CultureInfo.InvariantCulture);
                results.Add(parts[0] == "mlp"
                    ? new TrainingMeasurement("mlp", $"python3-torch {parts[2]}", "256-512-512-10", MlpBatch, seconds)
                    : new TrainingMeasurement("gpt", $"python3-torch {parts[2]}", "layers 2, heads 4, width 128, context 64", GptBatch, seconds));
            }

            return (results, null);
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            return (null, $"{python}: {exception.Message}");
        }
        finally
        {
            File.Delete(script);
        }
    }

    // The same modules as ours (pre-norm GPT block, fused qkv, 4x GELU MLP, untied head), same sizes and optimizer.
    private const string PythonScript = """
import sys, time, statistics
import torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_num_threads(1)
torch.manual_seed(1)
steps = int(sys.argv[1])

class Attn(nn.Module):
    def __init__(self, w, h):
        super().__init__(); self.h = h; self.qkv = nn.Linear(w, 3 * w); self.proj = nn.Linear(w, w)
    def forward(self, x, mask):
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, w // self.h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / (w // self.h) ** 0.5
        att = att.masked_fill(~mask, float('-inf')).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, w))

class Block(nn.Module):
    def __init__(self, w, h):
        super().__init__(); self.ln1 = nn.LayerNorm(w); self.attn = Attn(w, h); self.ln2 = nn.LayerNorm(w)
        self.fc = nn.Linear(w, 4 * w); self.proj = nn.Linear(4 * w, w)
    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))

class Gpt(nn.Module):
    def __init__(self, ctx=64, layers=2, heads=4, w=128):
        super().__init__(); self.wte = nn.Embedding(256, w); self.wpe = nn.Embedding(ctx, w)
        self.blocks = nn.ModuleList([Block(w, heads) for _ in range(layers)]); self.ln_f = nn.LayerNorm(w)
        self.lm_head = nn.Linear(w, 256, bias=False)
    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        for b in self.blocks:
            x = b(x, mask)
        return self.lm_head(self.ln_f(x))

def timed(model, steps, loss):
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    times = []
    for step in range(-2, steps):
        start = time.perf_counter()
        opt.zero_grad(); loss().backward(); opt.step()
        if step >= 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)

mlp = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
x = torch.randn(256, 256); y = torch.randint(0, 10, (256,))
print("mlp", timed(mlp, steps, lambda: F.cross_entropy(mlp(x), y)), torch.__version__)
gpt = Gpt()
tokens = torch.randint(97, 123, (16, 64)); targets = torch.cat([tokens[:, 1:], torch.full((16, 1), -100)], 1)
print("gpt", timed(gpt, max(3, steps // 3), lambda: F.cross_entropy(gpt(tokens).flatten(0, 1), targets.flatten(), ignore_index=-100)), torch.__version__)
""";
}
