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

    private readonly Block[]? _blocks;

    private Preconditioner(Preconditioning kind, IReadOnlyList<StoreLayer> layers, double[] damping, Block[]? blocks)
    {
        Kind = kind;
        Layers = layers;
        Damping = damping;
        _blocks = blocks;
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
        var preconditioner = Identity(layers);
        int dimension = store.Dimension;
        int n = store.Count;
        // With fewer examples than a block's size, C has rank N and the Woodbury identity solves an N x N system
        // instead of a D x D one: (C + λI)⁻¹ = (I - Gᵀ (NλI + G Gᵀ)⁻¹ G) / λ with G the N x D block of the store.
        var woodbury = layers.Select(l => n < l.BlockSize).ToArray();
        var accumulators = layers.Select((l, i) => woodbury[i] ? new double[(long)n * l.BlockSize] : new double[(long)l.BlockSize * l.BlockSize]).ToArray();
        int chunkRows = InfluenceScorer.ChunkRows(dimension);
        var chunk = new double[(long)chunkRows * dimension];
        for (long start = 0; start < n; start += chunkRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = (int)Math.Min(chunkRows, n - start);
            store.ReadRows(start, count, chunk);
            for (int l = 0; l < layers.Count; l++)
            {
                int size = layers[l].BlockSize, offset = preconditioner.Offsets[l];
                if (woodbury[l])
                {
                    for (int r = 0; r < count; r++)
                    {
                        chunk.AsSpan(r * dimension + offset, size).CopyTo(accumulators[l].AsSpan((int)((start + r) * size), size));
                    }
                }
                else
                {
                    backend.Gemm(Transpose.Transposed, Transpose.None, size, size, count, 1.0,
                        chunk.AsSpan(offset), dimension, chunk.AsSpan(offset), dimension, 1.0, accumulators[l], size);
                }
            }
        }

        var lambdas = new double[layers.Count];
        var blocks = new Block[layers.Count];
        for (int l = 0; l < layers.Count; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int size = layers[l].BlockSize;
            var matrix = accumulators[l];
            // tr(C) = (1/N) Σ_i |g_i|², from either form.
            double trace = 0;
            if (woodbury[l])
            {
                foreach (double v in matrix)
                {
                    trace += v * v;
                }
            }
            else
            {
                for (int i = 0; i < size; i++)
                {
                    trace += matrix[(long)i * size + i];
                }
            }

            trace /= n;
            double lambda = damping ?? RelativeDamping * trace / size;
            if (!(lambda > 0))
            {
                throw new LograException($"Layer '{layers[l].Name}': the damped Fisher is singular (trace {trace}, damping {lambda}); give a positive --damping.");
            }

            if (woodbury[l])
            {
                var kernel = new double[(long)n * n];
                backend.Gemm(Transpose.None, Transpose.Transposed, n, n, size, 1.0, matrix, size, matrix, size, 0.0, kernel, n);
                for (int i = 0; i < n; i++)
                {
                    kernel[(long)i * n + i] += n * lambda;
                }

                backend.CholeskyFactor(kernel, n);
                blocks[l] = new Block(size, lambda, kernel, matrix, n);
            }
            else
            {
                for (int i = 0; i < matrix.Length; i++)
                {
                    matrix[i] /= n;
                }

                for (int i = 0; i < size; i++)
                {
                    matrix[(long)i * size + i] += lambda;
                }

                backend.CholeskyFactor(matrix, size);
                blocks[l] = new Block(size, lambda, matrix, null);
            }

            lambdas[l] = lambda;
            progress?.Report($"preconditioner: layer {layers[l].Name} ({size} x {size}, λ = {lambda:G4}{(woodbury[l] ? $", Woodbury over {n} examples" : "")})");
        }

        return new Preconditioner(kind, layers, lambdas, blocks);
    }

    /// <summary>rows ← rows · (C + λI)⁻¹ per layer block, in place (rows x D, row-major).</summary>
    public void Apply(Span<double> rows, int count, ComputeBackend? backend = null)
    {
        if (_blocks is null || count == 0)
        {
            return;
        }

        backend ??= ComputeBackends.Default.Backend;
        for (int l = 0; l < Layers.Count; l++)
        {
            var block = _blocks[l];
            int size = block.Size;
            // Column-major right-hand sides for the solver: size x count.
            var columns = new double[(long)size * count];
            for (int r = 0; r < count; r++)
            {
                var row = rows.Slice(r * Dimension + Offsets[l], size);
                for (int i = 0; i < size; i++)
                {
                    columns[(long)i * count + r] = row[i];
                }
            }

            if (block.Examples is null)
            {
                backend.CholeskySolve(block.Factor, size, columns, count);
            }
            else
            {
                int n = block.ExampleCount;
                var projected = new double[(long)n * count];
                backend.Gemm(Transpose.None, Transpose.None, n, count, size, 1.0, block.Examples, size, columns, count, 0.0, projected, count);
                backend.CholeskySolve(block.Factor, n, projected, count);
                backend.Gemm(Transpose.Transposed, Transpose.None, size, count, n, -1.0, block.Examples, size, projected, count, 1.0, columns, count);
                for (int i = 0; i < columns.Length; i++)
                {
                    columns[i] /= block.Lambda;
                }
            }

            for (int r = 0; r < count; r++)
            {
                var row = rows.Slice(r * Dimension + Offsets[l], size);
                for (int i = 0; i < size; i++)
                {
                    row[i] = columns[(long)i * count + r];
                }
            }
        }
    }

    /// <summary>
    /// One layer's factorisation: the Cholesky factor of C + λI (D x D), or for N &lt; D the N x D gradients and the
    /// Cholesky factor of NλI + G Gᵀ (N x N).
    /// </summary>
    private sealed record Block(int Size, double Lambda, double[] Factor, double[]? Examples, int ExampleCount = 0);
}
