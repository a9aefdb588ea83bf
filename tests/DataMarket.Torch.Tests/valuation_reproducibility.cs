using DataMarket.Torch.Influence;
using TorchSharp;

namespace DataMarket.Torch.Tests;

[CollectionDefinition(nameof(ThreadCountChanges), DisableParallelization = true)]
public sealed class ThreadCountChanges;

/// <summary>The reproducibility promise on libtorch: same inputs and seed, same bits, whatever else runs.</summary>
[Collection(nameof(ThreadCountChanges))]
public class valuation_reproducibility
{
    public valuation_reproducibility() => TorchRuntime.Initialize("cpu");

    private static double[] Valuation(ulong seed = 4)
    {
        var random = new Random(21);
        var rows = 120;
        var features = Enumerable.Range(0, rows * 6).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var labels = Enumerable.Range(0, rows).Select(r => features[r * 6] + features[r * 6 + 1] > 0 ? 1 : 0).ToArray();
        var data = new TabularData(features, 6, labels);
        var result = TabularInfluence.Value(data, data with { }, new TabularInfluenceOptions
        {
            Training = new Models.TrainingOptions(Epochs: 3, BatchSize: 16, Seed: seed),
            Logra = new TorchLograOptions { Rank = 8, Init = ProjectionInit.Pca },
        });
        return result.Values.Concat(result.StandardErrors).ToArray();
    }

    [Fact]
    public async Task one_valuation_gives_the_same_bits_with_1_or_4_threads_and_with_other_work_running()
    {
        var single = Valuation();
        double[] fourThreads;
        try
        {
            torch.set_num_threads(4);
            fourThreads = Valuation();
        }
        finally
        {
            torch.set_num_threads(TorchRuntime.IntraOpThreads);
        }

        // Other torch work in the same process at the same time: large GEMMs and reductions on two threads.
        using var stop = new CancellationTokenSource();
        var noise = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var scope = torch.NewDisposeScope();
                var a = torch.randn(256, 256);
                a.matmul(a).sum().item<float>();
            }
        })).ToArray();
        var busy = Valuation();
        stop.Cancel();
        await Task.WhenAll(noise);

        Assert.Equal(single.Select(BitConverter.DoubleToInt64Bits), fourThreads.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(single.Select(BitConverter.DoubleToInt64Bits), busy.Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public async Task two_valuations_at_once_each_give_their_own_bits_while_other_work_reseeds_torch()
    {
        var first = Valuation(seed: 4);
        var second = Valuation(seed: 5);

        // Training draws from a generator of its own, so another valuation and code reseeding torch's process-wide
        // generator at the same time change nothing.
        using var stop = new CancellationTokenSource();
        var reseeding = Task.Run(() =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                torch.manual_seed(i);
                using var noise = torch.rand(64);
            }
        });
        var together = await Task.WhenAll(Task.Run(() => Valuation(seed: 4)), Task.Run(() => Valuation(seed: 5)));
        stop.Cancel();
        await reseeding;

        Assert.NotEqual(first.Select(BitConverter.DoubleToInt64Bits), second.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(first.Select(BitConverter.DoubleToInt64Bits), together[0].Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(second.Select(BitConverter.DoubleToInt64Bits), together[1].Select(BitConverter.DoubleToInt64Bits));
    }
}
