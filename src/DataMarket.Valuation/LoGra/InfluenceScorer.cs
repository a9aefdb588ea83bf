using System.Numerics.Tensors;
using DataMarket.Compute;
using DataMarket.Valuation.Statistics;

namespace DataMarket.Valuation.LoGra;

/// <summary>One block of the query x train score matrix: queries x <see cref="TrainCount"/>, row-major.</summary>
public sealed record ScoreChunk(int TrainStart, int TrainCount, int Queries, double[] Scores)
{
    public double this[int query, int train] => Scores[(long)query * TrainCount + train];
}

/// <summary>
/// Influence of stored training gradients on query gradients: s(q, t) = Σ_ℓ ⟨(C_ℓ + λI)⁻¹ g_q,ℓ, g_t,ℓ⟩,
/// positive = helpful (removing t is predicted to raise the query loss). The store is streamed in chunks through
/// the backend's GEMM, so memory is bounded by the chunk size, the queries and the preconditioner, not by N.
/// </summary>
public sealed class InfluenceScorer
{
    private const long ChunkValues = 1 << 22; // 32 MiB of float64 per chunk

    private readonly ComputeBackend _backend;

    public InfluenceScorer(GradientStore store, Preconditioner preconditioner, ComputeBackend? backend = null, int? chunkRows = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(preconditioner);
        if (preconditioner.Dimension != store.Dimension || !preconditioner.Layers.SequenceEqual(store.Header.Layers))
        {
            throw new LograException("The preconditioner was fitted to stores with other layers than this one.");
        }

        Store = store;
        Preconditioner = preconditioner;
        _backend = backend ?? ComputeBackends.Default.Backend;
        ChunkSize = chunkRows ?? ChunkRows(store.Dimension);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ChunkSize);
    }

    public GradientStore Store { get; }

    public Preconditioner Preconditioner { get; }

    /// <summary>Training rows read per chunk.</summary>
    public int ChunkSize { get; }

    /// <summary>
    /// A GPU (or gpu-emulated) device multiplies each chunk in float32 there (<see cref="Gpu.GpuScoring"/>); null or
    /// the CPU keeps the backend's float64 GEMM.
    /// </summary>
    public Gpu.ValuationDevice? Device { get; init; }

    internal static int ChunkRows(int dimension) => (int)Math.Clamp(ChunkValues / Math.Max(1, dimension), 1, 65536);

    /// <summary>ĝ_q = (C + λI)⁻¹ g_q per layer block.</summary>
    public GradientMatrix Precondition(GradientMatrix queries)
    {
        CheckDimension(queries);
        var values = (double[])queries.Values.Clone();
        Preconditioner.Apply(values, queries.Rows, _backend);
        return new GradientMatrix(values, queries.Rows, queries.Dimension);
    }

    /// <summary>Streams the score matrix chunk by chunk over the training rows.</summary>
    public void ScorePairwise(GradientMatrix queries, ScoreMode mode, Action<ScoreChunk> consume, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(consume);
        var preconditioned = Precondition(queries);
        int dimension = Store.Dimension, nq = queries.Rows;
        var chunk = new double[(long)ChunkSize * dimension];
        using var gpu = Gpu.GpuScoring.ForDevice(Device, preconditioned.Values, nq, dimension);
        for (long start = 0; start < Store.Count; start += ChunkSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = (int)Math.Min(ChunkSize, Store.Count - start);
            Store.ReadRows(start, count, chunk);
            var scores = new double[(long)nq * count];
            if (gpu is not null)
            {
                gpu.ScoreChunk(chunk.AsSpan(0, count * dimension), count, scores);
            }
            else
            {
                _backend.Gemm(Transpose.None, Transpose.Transposed, nq, count, dimension, 1.0, preconditioned.Values, dimension,
                    chunk, dimension, 0.0, scores, count);
            }

            if (mode == ScoreMode.Cosine)
            {
                var norms = SelfInfluence(chunk, count);
                for (int t = 0; t < count; t++)
                {
                    double scale = norms[t] > 0 ? 1.0 / Math.Sqrt(norms[t]) : 0.0;
                    for (int q = 0; q < nq; q++)
                    {
                        scores[(long)q * count + t] *= scale;
                    }
                }
            }

            consume(new ScoreChunk((int)start, count, nq, scores));
            progress?.Report((int)start + count);
        }
    }

    /// <summary>The whole queries x train matrix; for small inputs.</summary>
    public double[,] Pairwise(GradientMatrix queries, ScoreMode mode = ScoreMode.Dot)
    {
        var result = new double[queries.Rows, Store.Count];
        ScorePairwise(queries, mode, chunk =>
        {
            for (int q = 0; q < chunk.Queries; q++)
            {
                for (int t = 0; t < chunk.TrainCount; t++)
                {
                    result[q, chunk.TrainStart + t] = chunk[q, t];
                }
            }
        });
        return result;
    }

    /// <summary>
    /// Per training row: mean score over the queries with its standard error (NaN with one query), in store order.
    /// This is LoGra's data value of a training point for the buyer's test task.
    /// </summary>
    public ValueEstimate[] Values(GradientMatrix queries, ScoreMode mode, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (queries.Rows == 0)
        {
            throw new LograException("The test task has no examples; there is nothing to value against.");
        }

        var values = new ValueEstimate[Store.Count];
        ScorePairwise(queries, mode, chunk =>
        {
            var moments = new RunningMoments(chunk.TrainCount);
            for (int q = 0; q < chunk.Queries; q++)
            {
                moments.Add(chunk.Scores.AsSpan(q * chunk.TrainCount, chunk.TrainCount));
            }

            moments.Estimates().CopyTo(values, chunk.TrainStart);
        }, progress, cancellationToken);
        return values;
    }

    /// <summary>g_tᵀ (C + λI)⁻¹ g_t for every training row, in store order.</summary>
    public double[] SelfInfluence(CancellationToken cancellationToken = default)
    {
        var result = new double[Store.Count];
        var chunk = new double[(long)ChunkSize * Store.Dimension];
        for (long start = 0; start < Store.Count; start += ChunkSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = (int)Math.Min(ChunkSize, Store.Count - start);
            Store.ReadRows(start, count, chunk);
            SelfInfluence(chunk, count).CopyTo(result, start);
        }

        return result;
    }

    /// <summary>gᵀ (C + λI)⁻¹ g for rows held in memory (for example queries).</summary>
    public double[] SelfInfluence(GradientMatrix rows)
    {
        CheckDimension(rows);
        return SelfInfluence(rows.Values, rows.Rows);
    }

    private double[] SelfInfluence(double[] rows, int count)
    {
        int dimension = Store.Dimension;
        var preconditioned = rows.AsSpan(0, count * dimension).ToArray();
        Preconditioner.Apply(preconditioned, count, _backend);
        var result = new double[count];
        for (int r = 0; r < count; r++)
        {
            result[r] = TensorPrimitives.Dot<double>(preconditioned.AsSpan(r * dimension, dimension), rows.AsSpan(r * dimension, dimension));
        }

        return result;
    }

    private void CheckDimension(GradientMatrix rows)
    {
        if (rows.Dimension != Store.Dimension)
        {
            throw new LograException($"Query gradients have {rows.Dimension} values per example; the store has {Store.Dimension}.");
        }
    }
}
