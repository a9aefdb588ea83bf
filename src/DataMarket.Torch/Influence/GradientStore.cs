using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

/// <summary>
/// One LoGra valuation's logged state, produced once and read by every scoring shard of a sharded valuation: the
/// projected training gradients [N, D] and test gradients [M, D] in the store's dtype, each watched layer's
/// projections and the Cholesky factor of its damped Fisher, and every training row's self-influence gᵀ(C+λI)⁻¹g
/// (float64, the cosine denominator, computed once here instead of by every shard). The test gradients are logged
/// here too, in the same batches whatever the shards are, so a test point's gradient never depends on which shard
/// scores it. <see cref="Write"/> keeps every tensor's bytes, so a shard that reads the store back scores with the
/// same bits as the process that logged it.
/// </summary>
public sealed class GradientStore : IDisposable
{
    private static readonly byte[] s_magic = "DMLGS001"u8.ToArray();
    private readonly TorchLogra _logra;

    private GradientStore(TorchLogra logra, Tensor train, Tensor queries, Tensor selfInfluence)
    {
        _logra = logra;
        Train = train;
        Queries = queries;
        TrainSelfInfluence = selfInfluence;
    }

    /// <summary>The projected training gradients [N, D], store dtype, on the CPU.</summary>
    public Tensor Train { get; }

    /// <summary>The projected test gradients [M, D], store dtype, on the CPU (M = 0 for a self-influence valuation).</summary>
    public Tensor Queries { get; }

    /// <summary>gᵀ(C+λI)⁻¹g of every training row, float64 [N].</summary>
    public Tensor TrainSelfInfluence { get; }

    public int TrainingRows => (int)Train.shape[0];

    public int TestRows => (int)Queries.shape[0];

    /// <summary>Width of one gradient row.</summary>
    public long Dimension => _logra.Dimension;

    /// <summary>Logs the store for <paramref name="model"/> (projections set up, training rows logged and fitted, test rows logged).</summary>
    internal static GradientStore Log(
        nn.Module model, long trainRows, Func<Tensor, Tensor> trainLoss, long testRows, Func<Tensor, Tensor> testLoss,
        TorchLograOptions options, InfluenceProgress? progress, CancellationToken cancellationToken)
    {
        using var logra = TorchLogra.Create(model, options, trainRows, trainLoss);
        progress?.Invoke("logging", 0, trainRows);
        var train = logra.Log(trainRows, trainLoss);
        progress?.Invoke("logging", trainRows, trainRows);
        cancellationToken.ThrowIfCancellationRequested();
        logra.Fit(train);
        var queries = logra.Log(testRows, testLoss);
        var self = logra.SelfInfluence(train);

        // Keep the layout and factors, not the model: the store outlives it (and the caller's dispose scope).
        var projections = logra.Projections.Select(p => new LayerProjection(p.Name, Keep(p.In.cpu().clone()), Keep(p.Out.cpu().clone()), p.Offset)).ToList();
        var factors = logra.Factors.Select(f => Keep(f.clone())).ToList();
        return new GradientStore(TorchLogra.Restore(options, projections, factors), Keep(train), Keep(queries), Keep(self));
    }

    /// <summary>
    /// Scores of test points [<paramref name="first"/>, first + <paramref name="count"/>) against every training row:
    /// float64 [count, N] (dot or cosine).
    /// </summary>
    public Tensor Score(int first, int count, InfluenceMode mode)
    {
        if (mode == InfluenceMode.Self)
        {
            throw new ArgumentException("self-influence scores training rows: use SelfInfluence", nameof(mode));
        }

        TorchRuntime.PinThreads();
        return _logra.Score(Queries.narrow(0, first, count), Train, mode, selfInfluence: TrainSelfInfluence);
    }

    /// <summary>gᵀ(C+λI)⁻¹g of training rows [<paramref name="first"/>, first + <paramref name="count"/>): float64 [count].</summary>
    public Tensor SelfInfluence(int first, int count)
    {
        TorchRuntime.PinThreads();
        return _logra.SelfInfluence(Train.narrow(0, first, count));
    }

    /// <summary>The store as bytes: layers (name, offset, projections), factors, training and test gradients, self-influence.</summary>
    public void Write(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Write(s_magic);
        WriteInt(output, _logra.ChunkRows);
        WriteInt(output, _logra.Projections.Count);
        foreach (var projection in _logra.Projections)
        {
            var name = Encoding.UTF8.GetBytes(projection.Name);
            WriteInt(output, name.Length);
            output.Write(name);
            WriteLong(output, projection.Offset);
            WriteTensor(output, projection.In);
            WriteTensor(output, projection.Out);
        }

        WriteInt(output, _logra.Factors.Count);
        foreach (var factor in _logra.Factors)
        {
            WriteTensor(output, factor);
        }

        WriteTensor(output, Train);
        WriteTensor(output, Queries);
        WriteTensor(output, TrainSelfInfluence);
    }

    /// <summary>Reads a store written by <see cref="Write"/>; it scores with the writer's chunk size.</summary>
    public static GradientStore Read(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var magic = new byte[s_magic.Length];
        input.ReadExactly(magic);
        if (!magic.AsSpan().SequenceEqual(s_magic))
        {
            throw new InvalidDataException("not a LoGra gradient store (bad magic)");
        }

        var disposables = new List<Tensor>();
        Tensor Next()
        {
            var tensor = Keep(ReadTensor(input));
            disposables.Add(tensor);
            return tensor;
        }

        // The writer's chunking: the scores of a chunk depend on where its rows start, so readers chunk as it did.
        var options = new TorchLograOptions { ChunkRows = ReadInt(input) };
        try
        {
            var projections = new List<LayerProjection>();
            var layers = ReadInt(input);
            for (var i = 0; i < layers; i++)
            {
                var name = new byte[ReadInt(input)];
                input.ReadExactly(name);
                var offset = ReadLong(input);
                projections.Add(new LayerProjection(Encoding.UTF8.GetString(name), Next(), Next(), offset));
            }

            var factors = Enumerable.Range(0, ReadInt(input)).Select(_ => Next()).ToList();
            var train = Next();
            var queries = Next();
            var self = Next();
            return new GradientStore(TorchLogra.Restore(options, projections, factors), train, queries, self);
        }
        catch
        {
            foreach (var tensor in disposables)
            {
                tensor.Dispose();
            }

            throw;
        }
    }

    public void Dispose()
    {
        _logra.Dispose();
        Train.Dispose();
        Queries.Dispose();
        TrainSelfInfluence.Dispose();
    }

    private static Tensor Keep(Tensor tensor) => tensor.DetachFromDisposeScope();

    private static void WriteTensor(Stream output, Tensor tensor)
    {
        using var contiguous = tensor.cpu().contiguous();
        WriteInt(output, (int)contiguous.dtype);
        WriteInt(output, (int)contiguous.ndim);
        foreach (var size in contiguous.shape)
        {
            WriteLong(output, size);
        }

        if (contiguous.numel() > 0)
        {
            contiguous.WriteBytesToStream(output, 1 << 16);
        }
    }

    private static Tensor ReadTensor(Stream input)
    {
        var dtype = (ScalarType)ReadInt(input);
        var shape = new long[ReadInt(input)];
        for (var i = 0; i < shape.Length; i++)
        {
            shape[i] = ReadLong(input);
        }

        var tensor = torch.empty(shape, dtype: dtype);
        if (tensor.numel() > 0)
        {
            tensor.ReadBytesFromStream(input, 1 << 16);
        }

        return tensor;
    }

    private static void WriteInt(Stream output, int value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        output.Write(bytes);
    }

    private static void WriteLong(Stream output, long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        output.Write(bytes);
    }

    private static int ReadInt(Stream input)
    {
        Span<byte> bytes = stackalloc byte[4];
        input.ReadExactly(bytes);
        return BinaryPrimitives.ReadInt32LittleEndian(bytes);
    }

    private static long ReadLong(Stream input)
    {
        Span<byte> bytes = stackalloc byte[8];
        input.ReadExactly(bytes);
        return BinaryPrimitives.ReadInt64LittleEndian(bytes);
    }
}
