using DataMarket.Torch;
using DataMarket.Torch.Influence;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// LoGra valuations on TorchSharp, sharded like the KNN family. The coordinator trains the proxy (or loads the buyer's
/// checkpoint) and logs the gradient store once (<see cref="Log"/>); every shard, on any worker, reads that store
/// (<see cref="Open"/>) and scores fixed blocks of test points, leaving per-training-point moments that merge in shard
/// order. Self-influence needs no test point: its shards cut the training rows instead. libtorch loads on the first
/// LoGra job, never at host start, on the device named by <c>Torch:Device</c> (cpu by default); the choice is logged
/// once, then.
/// </summary>
public sealed class LograEngine(string? deviceName, ILogger<LograEngine> logger)
{
    public const string Dot = "dot";
    public const string Cosine = "cosine";
    public const string Self = "self";

    /// <summary>The scoring modes a request may ask for.</summary>
    public static readonly IReadOnlyList<string> Modes = [Dot, Cosine, Self];

    /// <summary>
    /// Training rows per self-influence block: shards over training rows hold whole blocks, so each row's solve runs
    /// in the same block (the same bits) whatever the plan.
    /// </summary>
    public const int SelfBlock = 64;

    /// <summary>
    /// What one self-influence row costs in scoring pairs, to size its shards: a solve per layer (about Σ k² for
    /// k = k_out·k_in) against one GEMM column of width D per pair; about 256 at the default rank.
    /// </summary>
    public const long SelfRowPairs = 256;

    /// <summary>
    /// The coordinator's half: checks the labels, trains the proxy (or loads <paramref name="checkpoint"/>), logs the
    /// gradient store and hands it to <paramref name="persist"/> (the blob store) before any shard is sent.
    /// </summary>
    /// <remarks>
    /// With a <paramref name="checkpoint"/> the model is used as it is: it was trained on class indices, so every label
    /// must be one (0, 1, ...); without one, classes are numbered in sorted order of the labels.
    /// </remarks>
    public ShardedValuation Log(
        IReadOnlyList<TrainingPart> parts, TabularDataset test, string mode, string? checkpoint, Action<GradientStore> persist, CancellationToken cancellationToken)
    {
        var influence = Check(parts, mode);
        InitializeTorch();

        // Classes in sorted order over training and test labels (class indices as they are for a checkpoint).
        var classes = ClassLabels.Indices([.. parts.Select(p => p.Data.Labels), test.Labels], checkpoint is not null,
            (source, row, message) => new ValuationRejectedException($"{(source < parts.Count ? $"listing {parts[source].Name}" : "the test task")}, row {row}: {message}"));
        var width = test.FeatureCount;
        var train = new TabularData(
            parts.SelectMany(p => p.Data.Features).ToArray(), width, parts.SelectMany(p => p.Data.Labels).Select(l => classes[l]).ToArray());
        var testData = new TabularData(test.Features, width, test.Labels.Select(l => classes[l]).ToArray());

        GradientStore store;
        try
        {
            store = TabularInfluence.LogStore(train, testData, new TabularInfluenceOptions { CheckpointPath = checkpoint, Mode = influence }, null, cancellationToken);
        }
        catch (Exception exception) when (exception is DataMarket.Torch.Models.CheckpointException or ArgumentException)
        {
            // The checkpoint's file is this worker's copy: the buyer knows it as "the model".
            var message = checkpoint is null ? exception.Message : exception.Message.Replace(checkpoint, "the model", StringComparison.Ordinal);
            throw new ValuationRejectedException(message, exception);
        }

        try
        {
            persist(store);
        }
        catch
        {
            store.Dispose();
            throw;
        }

        return Valuation(parts, test.Rows, influence, new Lazy<GradientStore>(store));
    }

    private void InitializeTorch() =>
        TorchRuntime.Initialize(deviceName, description => logger.LogInformation("LoGra runs on {TorchDevice}", description));

    /// <summary>
    /// A shard worker's half: the valuation over the store <paramref name="load"/> reads, loaded on the first shard
    /// (a worker that only merges never reads it).
    /// </summary>
    public ShardedValuation Open(IReadOnlyList<TrainingPart> parts, TabularDataset test, string mode, Func<GradientStore> load)
    {
        var influence = Check(parts, mode);
        return Valuation(parts, test.Rows, influence, new Lazy<GradientStore>(() =>
        {
            InitializeTorch();
            return load();
        }));
    }

    /// <summary>
    /// Per test point of <paramref name="range"/>, in fixed blocks of <see cref="TestPointBlocks.Size"/> that start at
    /// multiples of the block size (shards hold 2^j whole blocks): every training row's score, each seller's sum over its
    /// rows and the sum over all rows, added to the block's moments in test-point order; the blocks reduce pairwise
    /// (<see cref="KnnShapley.ReducePairwise"/>), as the shards do after them.
    /// </summary>
    internal static ShardMoments ScoreShard(GradientStore store, InfluenceMode mode, int[] groups, int groupCount, TestPointRange range, CancellationToken cancellationToken)
    {
        var rows = store.TrainingRows;
        var perGroup = new double[groupCount];
        IEnumerable<ShardMoments> Blocks()
        {
            for (var first = range.First; first < range.First + range.Count; first += TestPointBlocks.Size)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var count = Math.Min(TestPointBlocks.Size, range.First + range.Count - first);
                var block = new ShardMoments(new TestPointRange(first, count), new RunningMoments(rows), new RunningMoments(groupCount), new RunningMoments(1));
                using var scores = store.Score(first, count, mode);
                var values = scores.data<double>().ToArray();
                for (var r = 0; r < count; r++)
                {
                    var sample = values.AsSpan(r * rows, rows);
                    Array.Clear(perGroup);
                    double total = 0;
                    for (var t = 0; t < rows; t++)
                    {
                        perGroup[groups[t]] += sample[t];
                        total += sample[t];
                    }

                    block.Points.Add(sample);
                    block.Groups.Add(perGroup);
                    block.Utility.Add([total]);
                }

                yield return block;
            }
        }

        return KnnShapley.ReducePairwise(Blocks());
    }

    /// <summary>Self-influence of the training rows of <paramref name="range"/>, in blocks of <see cref="SelfBlock"/> rows: one sample per row.</summary>
    internal static ShardMoments SelfShard(GradientStore store, TestPointRange range, int groupCount, CancellationToken cancellationToken)
    {
        var values = new double[range.Count];
        for (var first = range.First; first < range.First + range.Count; first += SelfBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(SelfBlock, range.First + range.Count - first);
            using var self = store.SelfInfluence(first, count);
            self.data<double>().CopyTo(values, first - range.First);
        }

        return new ShardMoments(range, RunningMoments.FromState(1, values, new double[values.Length]), new RunningMoments(groupCount), new RunningMoments(1));
    }

    private static ShardedValuation Valuation(IReadOnlyList<TrainingPart> parts, int testPoints, InfluenceMode mode, Lazy<GradientStore> store)
    {
        // Sellers in order of their first listing; a row's seller is its listing's.
        var groupOrder = parts.Select(p => p.Group).Distinct(StringComparer.Ordinal).ToList();
        var groupIndex = groupOrder.Select((group, index) => (group, index)).ToDictionary(g => g.group, g => g.index, StringComparer.Ordinal);
        var groups = parts.SelectMany(p => Enumerable.Repeat(groupIndex[p.Group], p.Data.Rows)).ToArray();
        var trainingPoints = groups.Length;
        if (mode == InfluenceMode.Self)
        {
            return ShardedValuation.FromEngine(parts, groupOrder, testPoints, (range, _, ct) => SelfShard(store.Value, range, groupOrder.Count, ct),
                overTrainingRows: true, SelfBlock, SelfRowPairs);
        }

        return ShardedValuation.FromEngine(parts, groupOrder, testPoints, (range, _, ct) => ScoreShard(store.Value, mode, groups, groupOrder.Count, range, ct),
            overTrainingRows: false, TestPointBlocks.Size, trainingPoints);
    }

    private static InfluenceMode Check(IReadOnlyList<TrainingPart> parts, string mode)
    {
        if (parts.Count == 0 || parts.All(p => p.Data.Rows == 0))
        {
            throw new ValuationRejectedException("There is no training data to value.");
        }

        return mode switch
        {
            Dot => InfluenceMode.Dot,
            Cosine => InfluenceMode.Cosine,
            Self => InfluenceMode.Self,
            _ => throw new ValuationRejectedException($"unknown LoGra mode '{mode}' (supported: {string.Join(", ", Modes)})"),
        };
    }
}
