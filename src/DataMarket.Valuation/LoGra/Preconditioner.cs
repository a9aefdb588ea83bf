using DataMarket.Compute;

namespace DataMarket.Valuation.LoGra;

/// <summary>
/// Block-diagonal preconditioner over the watched layers, in float64. Raw: per layer block ℓ,
/// (C_ℓ + λ_ℓ I)⁻¹ with C_ℓ = (1/N) Σ_i g_i,ℓ g_i,ℓᵀ over the store and λ_ℓ = 0.1 · tr(C_ℓ) / D_ℓ unless an absolute
/// damping is given. No cross-layer terms: influence is a sum of per-layer products.
/// </summary>
public sealed class Preconditioner
{
    /// <summary>LogIX's relative damping: λ = this factor times the mean eigenvalue of C.</summary>
    public const double RelativeDamping = 0.1;

    private readonly double[][]? _inverses;

    private Preconditioner(Preconditioning kind, IReadOnlyList<StoreLayer> layers, double[] damping, double[][]? inverses)
    {
        Kind = kind;
        Layers = layers;
        Damping = damping;
        _inverses = inverses;
        var offsets = new int[layers.Count];
        for (int i = 1; i < layers.Count; i++)
        {
            offsets[i] = offsets[i - 1] + layers[i - 1].BlockSize;
        }

        Offsets = offsets;
        Dimension = layers.Sum(l => l.BlockSize);
    }

    public Preconditioning Kind { get; }

    public IReadOnlyList<StoreLayer> Layers { get; }

    public IReadOnlyList<int> Offsets { get; }

    public int Dimension { get; }

    /// <summary>λ per layer (0 for identity).</summary>
    public IReadOnlyList<double> Damping { get; }

    /// <summary>(C_ℓ + λ_ℓ I)⁻¹, D_ℓ x D_ℓ row-major; null for identity.</summary>
    public ReadOnlySpan<double> Inverse(int layer) => _inverses is null ? default : _inverses[layer];

    public static Preconditioner Identity(IReadOnlyList<StoreLayer> layers) => new(Preconditioning.Identity, layers, new double[layers.Count], null);

    /// <summary>
    /// Fits the preconditioner to a store, streaming it in chunks; memory is O(Σ D_ℓ²), independent of N.
    /// <paramref name="damping"/> is an absolute λ for every layer; null uses 0.1 · tr(C_ℓ)/D_ℓ.
    /// </summary>
    public static Preconditioner Fit(GradientStore store, Preconditioning kind, double? damping = null, ComputeBackend? backend = null,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var layers = store.Header.Layers;
        if (kind == Preconditioning.Identity)
        {
            return Identity(layers);
        }

        if (store.Count == 0)
        {
            throw new LograException($"{store.Directory}: the store is empty; a raw preconditioner needs training gradients.");
        }

        if (damping is { } given && (!double.IsFinite(given) || given < 0))
        {
            throw new LograException($"The damping must be a finite number >= 0, got {given}.");
        }

        backend ??= ComputeBackends.Default.Backend;
        var covariances = layers.Select(l => new double[(long)l.BlockSize * l.BlockSize]).ToArray();
        var preconditioner = Identity(layers);
        int dimension = store.Dimension;
        int chunkRows = InfluenceScorer.ChunkRows(dimension);
        var chunk = new double[(long)chunkRows * dimension];
        for (long start = 0; start < store.Count; start += chunkRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = (int)Math.Min(chunkRows, store.Count - start);
            store.ReadRows(start, count, chunk);
            for (int l = 0; l < layers.Count; l++)
            {
                int size = layers[l].BlockSize;
                backend.Gemm(Transpose.Transposed, Transpose.None, size, size, count, 1.0,
                    chunk.AsSpan(preconditioner.Offsets[l]), dimension, chunk.AsSpan(preconditioner.Offsets[l]), dimension, 1.0, covariances[l], size);
            }
        }

        var lambdas = new double[layers.Count];
        var inverses = new double[layers.Count][];
        for (int l = 0; l < layers.Count; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int size = layers[l].BlockSize;
            var matrix = covariances[l];
            double trace = 0;
            for (int i = 0; i < matrix.Length; i++)
            {
                matrix[i] /= store.Count;
            }

            for (int i = 0; i < size; i++)
            {
                trace += matrix[(long)i * size + i];
            }

            double lambda = damping ?? RelativeDamping * trace / size;
            if (!(lambda > 0))
            {
                throw new LograException($"Layer '{layers[l].Name}': the damped Fisher is singular (trace {trace}, damping {lambda}); give a positive --damping.");
            }

            for (int i = 0; i < size; i++)
            {
                matrix[(long)i * size + i] += lambda;
            }

            backend.CholeskyFactor(matrix, size);
            var inverse = new double[(long)size * size];
            for (int i = 0; i < size; i++)
            {
                inverse[(long)i * size + i] = 1.0;
            }

            backend.CholeskySolve(matrix, size, inverse, size);
            Symmetrize(inverse, size);
            lambdas[l] = lambda;
            inverses[l] = inverse;
            progress?.Report($"preconditioner: layer {layers[l].Name} ({size} x {size}, λ = {lambda:G4})");
        }

        return new Preconditioner(kind, layers, lambdas, inverses);
    }

    /// <summary>rows ← rows · (C + λI)⁻¹ per layer block, in place (rows x D, row-major).</summary>
    public void Apply(Span<double> rows, int count, ComputeBackend? backend = null)
    {
        if (_inverses is null || count == 0)
        {
            return;
        }

        backend ??= ComputeBackends.Default.Backend;
        for (int l = 0; l < Layers.Count; l++)
        {
            int size = Layers[l].BlockSize;
            var block = new double[(long)count * size];
            backend.Gemm(Transpose.None, Transpose.None, count, size, size, 1.0, rows[Offsets[l]..], Dimension, _inverses[l], size, 0.0, block, size);
            for (int r = 0; r < count; r++)
            {
                block.AsSpan(r * size, size).CopyTo(rows.Slice(r * Dimension + Offsets[l], size));
            }
        }
    }

    private static void Symmetrize(double[] matrix, int n)
    {
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                double mean = 0.5 * (matrix[(long)i * n + j] + matrix[(long)j * n + i]);
                matrix[(long)i * n + j] = mean;
                matrix[(long)j * n + i] = mean;
            }
        }
    }
}
