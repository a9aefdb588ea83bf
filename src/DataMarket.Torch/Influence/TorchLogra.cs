using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Influence;

public enum ProjectionInit { Random, Pca, Identity }

public enum Preconditioning { Raw, Identity }

/// <summary>
/// dot: how much each training row helped the test points (positive = removing it raises their loss);
/// cosine: the same with each training row's gradient normalised, so rows with huge gradients do not dominate;
/// self: each training row's influence on itself, which is high for rows the model finds surprising (mislabels).
/// </summary>
public enum InfluenceMode { Dot, Cosine, Self }

/// <summary>
/// LoGra options. Rank is k per side (k_in = min(rank, in), k_out = min(rank, out)); Identity init skips projection
/// (exact per-layer gradients, for small checks). Damping null means <see cref="RelativeDamping"/> x the mean eigenvalue
/// of each layer's Fisher.
/// </summary>
public sealed record TorchLograOptions
{
    public int Rank { get; init; } = 16;
    public ProjectionInit Init { get; init; } = ProjectionInit.Random;
    public Preconditioning Hessian { get; init; } = Preconditioning.Raw;
    public double? Damping { get; init; }

    /// <summary>
    /// λ as a multiple of each layer's mean Fisher eigenvalue when <see cref="Damping"/> is null. LogIX uses 0.1; on
    /// UCI digits (bench logra-validity, rank 16, training seeds 1-4) 0.3 gave LDS 0.481-0.495 (random) and
    /// 0.544-0.555 (PCA) against 0.460-0.477 and 0.529-0.536 at 0.1; 0.01 and 3 were worse still (0.39 and 0.45 random).
    /// </summary>
    public double RelativeDamping { get; init; } = DefaultRelativeDamping;

    public const double DefaultRelativeDamping = 0.3;
    public ulong Seed { get; init; } = 1;
    public ScalarType StoreType { get; init; } = ScalarType.Float32;
    public int BatchSize { get; init; } = 64;
    public int ChunkRows { get; init; } = 1024;
    public IReadOnlyCollection<string>? Layers { get; init; }

    /// <summary>The scoring GEMM (<see cref="TorchLogra.Gemm"/>); libtorch's matmul when null.</summary>
    public StoreGemm? Gemm { get; init; }
}

/// <summary>Scores of test gradients [M, D] against one store chunk [rows, D]: [M, rows].</summary>
public delegate Tensor StoreGemm(Tensor queries, Tensor chunk);

/// <summary>One watched layer's projections: P_in [k_in, in] and P_out [k_out, out]; its block in a row starts at Offset.</summary>
public sealed record LayerProjection(string Name, Tensor In, Tensor Out, long Offset)
{
    public long Size => In.shape[0] * Out.shape[0];
}

/// <summary>
/// LoGra (Choe et al. 2024) on TorchSharp: per-example gradients of the watched Linear layers, projected on both sides
/// (G̃ = Σ_t (P_out dy_t)(P_in x_t)ᵀ, never materialising G), stored as rows, preconditioned per layer with the damped
/// empirical Fisher, and scored by GEMM over the store in fixed chunks. Losses are summed over examples and tokens.
/// </summary>
public sealed class TorchLogra : IDisposable
{
    private readonly nn.Module? _model;
    private readonly LinearCapture? _capture;
    private readonly TorchLograOptions _options;
    private readonly List<Tensor> _factors = []; // per layer: Cholesky factor of (C + λI), float64

    private TorchLogra(nn.Module? model, TorchLograOptions options, IReadOnlyList<LayerProjection> projections, LinearCapture? capture)
    {
        _model = model;
        _options = options;
        Projections = projections;
        _capture = capture;
        Dimension = projections.Sum(p => p.Size);
        Gemm = options.Gemm ?? DefaultGemm;
    }

    public IReadOnlyList<LayerProjection> Projections { get; }

    /// <summary>Each watched layer's Cholesky factor of (C + λI), float64; empty with the identity preconditioner.</summary>
    internal IReadOnlyList<Tensor> Factors => _factors;

    /// <summary>Store rows per scoring chunk.</summary>
    internal int ChunkRows => _options.ChunkRows;

    /// <summary>
    /// The scoring seam: preconditioned test gradients [M, D] times one store chunk [rows, D] transposed, in the
    /// store's dtype. Scoring calls it once per fixed chunk in row order; another device's GEMM can take its place as
    /// long as each chunk's product is the same whatever else runs.
    /// </summary>
    public StoreGemm Gemm { get; set; } = DefaultGemm;

    /// <summary>libtorch's matmul on the tensors' device.</summary>
    public static Tensor DefaultGemm(Tensor queries, Tensor chunk) => queries.matmul(chunk.t());

    /// <summary>Width of one gradient row (Σ over layers of k_out x k_in).</summary>
    public long Dimension { get; }

    /// <summary>
    /// Sets up projections for <paramref name="model"/>. <paramref name="lossOf"/> gives the summed loss of a batch
    /// of row indices (the model in eval mode, float dtype of the model); PCA init runs it once over every batch.
    /// </summary>
    public static TorchLogra Create(nn.Module model, TorchLograOptions options, long rows, Func<Tensor, Tensor> lossOf)
    {
        var capture = new LinearCapture(model, options.Layers);
        try
        {
            var dtype = model.parameters().First().dtype;
            var device = model.parameters().First().device;
            var projections = options.Init switch
            {
                ProjectionInit.Pca => PcaProjections(model, capture, options, rows, lossOf, dtype),
                _ => FixedProjections(capture, options, dtype, device),
            };
            return new TorchLogra(model, options, projections, capture);
        }
        catch
        {
            capture.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A scorer over a stored state (<see cref="GradientStore"/>): the layers' projections and fitted factors, no
    /// model. It preconditions and scores; <see cref="Gradients"/> and <see cref="Log"/> need a model and refuse.
    /// Takes ownership of the tensors.
    /// </summary>
    internal static TorchLogra Restore(TorchLograOptions options, IReadOnlyList<LayerProjection> projections, IReadOnlyList<Tensor> factors)
    {
        var logra = new TorchLogra(null, options, projections, null);
        logra._factors.AddRange(factors);
        return logra;
    }

    /// <summary>Projected per-example gradients of the rows in <paramref name="batch"/>: [B, Dimension] in the model's dtype.</summary>
    public Tensor Gradients(Tensor batch, Func<Tensor, Tensor> lossOf)
    {
        if (_model is null || _capture is null)
        {
            throw new InvalidOperationException("This LoGra state was restored from a store without its model: it scores, it cannot log gradients.");
        }

        using var scope = NewDisposeScope();
        _model.zero_grad();
        _capture.ForwardBackward(() => lossOf(batch));
        var blocks = new List<Tensor>();
        foreach (var projection in Projections)
        {
            var (x, dy) = _capture.Get(projection.Name);
            var rows = x.shape[0];
            var px = x.reshape(rows, -1, x.shape[^1]).matmul(projection.In.t());      // [B, T, k_in]
            var pdy = dy.reshape(rows, -1, dy.shape[^1]).matmul(projection.Out.t());  // [B, T, k_out]
            blocks.Add(pdy.transpose(1, 2).matmul(px).reshape(rows, -1));               // Σ_t outer: [B, k_out*k_in]
        }

        return torch.cat(blocks, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Logs every row's projected gradient in batches: the store, [rows, Dimension] in the store dtype.</summary>
    public Tensor Log(long rows, Func<Tensor, Tensor> lossOf)
    {
        var store = torch.empty(rows, Dimension, dtype: _options.StoreType);
        for (long start = 0; start < rows; start += _options.BatchSize)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(_options.BatchSize, rows - start);
            var batch = torch.arange(start, start + count, dtype: int64);
            store[TensorIndex.Slice(start, start + count)] = Gradients(batch, lossOf).to(_options.StoreType).cpu();
        }

        return store;
    }

    /// <summary>
    /// Fits the preconditioner on the store: per layer C = GᵀG / N in float64, accumulated over fixed chunks in row
    /// order (the same bits however the store was produced), damped by λ and factorised.
    /// </summary>
    public void Fit(Tensor store)
    {
        DisposeFactors();
        if (_options.Hessian == Preconditioning.Identity)
        {
            return;
        }

        var rows = store.shape[0];
        foreach (var projection in Projections)
        {
            using var scope = NewDisposeScope();
            var covariance = torch.zeros(projection.Size, projection.Size, dtype: float64);
            foreach (var chunk in Chunks(store))
            {
                var block = chunk.narrow(1, projection.Offset, projection.Size).to(float64);
                covariance.add_(block.t().matmul(block), HeldScalars.One);
            }

            using var count = rows.ToScalar();
            covariance.div_(count);
            using var damping = (_options.Damping ?? _options.RelativeDamping * covariance.trace().item<double>() / projection.Size).ToScalar();
            covariance.add_(torch.eye(projection.Size, dtype: float64).mul(damping), HeldScalars.One);
            _factors.Add(torch.linalg.cholesky(covariance).MoveToOuterDisposeScope());
        }
    }

    /// <summary>(C + λI)⁻¹ g per layer, float64 [M, Dimension].</summary>
    public Tensor Precondition(Tensor gradients)
    {
        using var scope = NewDisposeScope();
        var g = gradients.to(float64);
        if (_factors.Count == 0)
        {
            return g.clone().MoveToOuterDisposeScope();
        }

        var blocks = Projections.Select((p, i) => torch.cholesky_solve(g.narrow(1, p.Offset, p.Size).t(), _factors[i]).t()).ToList();
        return torch.cat(blocks, 1).MoveToOuterDisposeScope();
    }

    /// <summary>gᵀ(C + λI)⁻¹g for every store row, float64 [N], chunk by chunk.</summary>
    public Tensor SelfInfluence(Tensor store)
    {
        var parts = new List<Tensor>();
        foreach (var chunk in Chunks(store))
        {
            using var scope = NewDisposeScope();
            var g = chunk.to(float64);
            parts.Add((g * Precondition(g)).sum(1L).MoveToOuterDisposeScope());
        }

        var result = torch.cat(parts, 0);
        foreach (var part in parts)
        {
            part.Dispose();
        }

        return result;
    }

    /// <summary>
    /// Scores [M test, N train]: dot = ĝ_qᵀ g_t; cosine divides by √(g_tᵀ(C+λI)⁻¹g_t), taken from
    /// <paramref name="selfInfluence"/> [N] when given (computed once for many calls), else computed per chunk. The GEMM
    /// over each store chunk runs in the store's dtype; results are float64, written into <paramref name="output"/> when
    /// given (a float64 [M, N] tensor a caller reuses across calls: a fresh result of more than 32 MB is new memory from
    /// the kernel each time, whose page faults cost more than the GEMM at small ranks) and returned.
    /// </summary>
    public Tensor Score(Tensor queryGradients, Tensor store, InfluenceMode mode, Action<long>? progress = null, Tensor? output = null, Tensor? selfInfluence = null)
    {
        if (output is not null && (output.dtype != float64 || output.dim() != 2 || output.shape[0] != queryGradients.shape[0] || output.shape[1] != store.shape[0]))
        {
            throw new ArgumentException($"The output must be float64 [{queryGradients.shape[0]}, {store.shape[0]}].", nameof(output));
        }

        using var preconditioned = Precondition(queryGradients);
        using var query = preconditioned.to(store.dtype);
        // Each chunk's product goes straight into its columns of the result: no list of parts and no concatenation
        // (which held the scores twice).
        var result = output ?? torch.empty(query.shape[0], store.shape[0], dtype: float64, device: store.device);
        long done = 0;
        foreach (var chunk in Chunks(store))
        {
            using var scope = NewDisposeScope();
            var columns = result.narrow(1, done, chunk.shape[0]);
            columns.copy_(Gemm(query, chunk).to(float64));
            if (mode == InfluenceMode.Cosine)
            {
                var norms = selfInfluence?.narrow(0, done, chunk.shape[0]);
                if (norms is null)
                {
                    var g = chunk.to(float64);
                    norms = (g * Precondition(g)).sum(1L);
                }

                using var floor = 1e-300.ToScalar();
                columns.div_(norms.clamp_min(floor).sqrt().unsqueeze(0));
            }

            done += chunk.shape[0];
            progress?.Invoke(done);
        }

        return result;
    }

    private IEnumerable<Tensor> Chunks(Tensor store)
    {
        var rows = store.shape[0];
        for (long start = 0; start < rows; start += _options.ChunkRows)
        {
            yield return store.narrow(0, start, Math.Min(_options.ChunkRows, rows - start));
        }
    }

    private static List<LayerProjection> FixedProjections(LinearCapture capture, TorchLograOptions options, ScalarType dtype, Device device)
    {
        var result = new List<LayerProjection>();
        long offset = 0;
        var generator = new torch.Generator(options.Seed);
        foreach (var (name, layer) in capture.Layers)
        {
            long inputs = layer.weight!.shape[1], outputs = layer.weight.shape[0];
            Tensor pin, pout;
            if (options.Init == ProjectionInit.Identity)
            {
                (pin, pout) = (torch.eye(inputs, dtype: dtype), torch.eye(outputs, dtype: dtype));
            }
            else
            {
                // LogIX's default: kaiming-uniform rows, U(±1/√n), drawn in a fixed order from one seeded generator.
                long kin = Math.Min(options.Rank, inputs), kout = Math.Min(options.Rank, outputs);
                pin = Uniform(kin, inputs, generator).to(dtype);
                pout = Uniform(kout, outputs, generator).to(dtype);
            }

            var projection = new LayerProjection(name, pin.to(device), pout.to(device), offset);
            offset += projection.Size;
            result.Add(projection);
        }

        return result;
    }

    /// <summary>[k, n] float64 drawn from U(±1/√n) in the generator's order (scalars held across each call: see <see cref="HeldScalars"/>).</summary>
    private static Tensor Uniform(long k, long n, Generator generator)
    {
        using var two = 2.ToScalar();
        using var minusOne = (-1).ToScalar();
        using var scale = Math.Sqrt(n).ToScalar();
        return torch.rand(k, n, dtype: float64, generator: generator).mul_(two).add_(minusOne, HeldScalars.One).div_(scale);
    }

    // P_in and P_out are the top-k eigenvectors of E[x xᵀ] and E[dy dyᵀ] (uncentred, over tokens), as LogIX's PCA init.
    private static List<LayerProjection> PcaProjections(nn.Module model, LinearCapture capture, TorchLograOptions options, long rows, Func<Tensor, Tensor> lossOf, ScalarType dtype)
    {
        var inputs = capture.Layers.Select(l => torch.zeros(l.Layer.weight!.shape[1], l.Layer.weight.shape[1], dtype: float64)).ToList();
        var outputs = capture.Layers.Select(l => torch.zeros(l.Layer.weight!.shape[0], l.Layer.weight.shape[0], dtype: float64)).ToList();
        try
        {
            for (long start = 0; start < rows; start += options.BatchSize)
            {
                using var scope = NewDisposeScope();
                model.zero_grad();
                capture.ForwardBackward(() => lossOf(torch.arange(start, Math.Min(start + options.BatchSize, rows), dtype: int64)));
                for (var i = 0; i < capture.Layers.Count; i++)
                {
                    var (x, dy) = capture.Get(capture.Layers[i].Name);
                    var x2 = x.reshape(-1, x.shape[^1]).to(float64).cpu();
                    var dy2 = dy.reshape(-1, dy.shape[^1]).to(float64).cpu();
                    inputs[i].add_(x2.t().matmul(x2), HeldScalars.One);
                    outputs[i].add_(dy2.t().matmul(dy2), HeldScalars.One);
                }
            }

            var result = new List<LayerProjection>();
            long offset = 0;
            var device = model.parameters().First().device;
            for (var i = 0; i < capture.Layers.Count; i++)
            {
                var pin = TopEigenvectors(inputs[i], options.Rank).to(dtype).to(device);
                var pout = TopEigenvectors(outputs[i], options.Rank).to(dtype).to(device);
                var projection = new LayerProjection(capture.Layers[i].Name, pin, pout, offset);
                offset += projection.Size;
                result.Add(projection);
            }

            return result;
        }
        finally
        {
            foreach (var t in inputs.Concat(outputs))
            {
                t.Dispose();
            }
        }
    }

    private static Tensor TopEigenvectors(Tensor covariance, int rank)
    {
        using var scope = NewDisposeScope();
        var (_, vectors) = torch.linalg.eigh(covariance); // ascending eigenvalues
        var k = Math.Min(rank, covariance.shape[0]);
        return vectors.narrow(1, covariance.shape[0] - k, k).flip(1).t().contiguous().MoveToOuterDisposeScope();
    }

    private void DisposeFactors()
    {
        foreach (var factor in _factors)
        {
            factor.Dispose();
        }

        _factors.Clear();
    }

    public void Dispose()
    {
        DisposeFactors();
        _capture?.Dispose();
        foreach (var projection in Projections)
        {
            projection.In.Dispose();
            projection.Out.Dispose();
        }
    }
}
