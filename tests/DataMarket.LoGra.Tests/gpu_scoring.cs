using DataMarket.Compute;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.LoGra;

namespace DataMarket.LoGra.Tests;

/// <summary>
/// LoGra's scoring GEMM on the GPU path (float32, chunked through <see cref="GpuScoring"/>), run on ILGPU's CPU
/// accelerator, against the CPU path's scores from the same store and preconditioner.
/// </summary>
public sealed class gpu_scoring
{
    [Theory]
    [InlineData(ScoreMode.Dot)]
    [InlineData(ScoreMode.Cosine)]
    public void scores_on_the_gpu_path_are_the_cpu_paths_within_1e_4_relative(ScoreMode mode)
    {
        using var folder = new TempFolder();
        var model = Problems.Mlp<float>(3, 5, 3);
        var (trainFeatures, trainLabels) = Problems.Blobs(40, 3, 3, seed: 1, spread: 1.5);
        var (queryFeatures, queryLabels) = Problems.Blobs(6, 3, 3, seed: 2, spread: 1.5);
        var train = new TabularGradientSource<float>(model, Problems.Cast<float>(trainFeatures), trainLabels);
        var query = new TabularGradientSource<float>(model, Problems.Cast<float>(queryFeatures), queryLabels);
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 3 });
        using var store = Problems.Log(train, projections, folder.Sub("store"), GradientDType.Float32);
        var preconditioner = Preconditioner.Fit(store, Preconditioning.Raw, null, ComputeBackends.Managed);
        var queries = Problems.Gradients(query, projections);
        using var device = ValuationDevice.Select(DeviceKind.GpuEmulated);

        // Seven rows per chunk: the 40 store rows go through the device in six chunks, the last one short.
        var cpu = new InfluenceScorer(store, preconditioner, ComputeBackends.Managed, chunkRows: 7).Pairwise(queries, mode);
        var gpu = new InfluenceScorer(store, preconditioner, ComputeBackends.Managed, chunkRows: 7) { Device = device }.Pairwise(queries, mode);

        var scale = 0.0;
        foreach (var score in cpu)
        {
            scale = Math.Max(scale, Math.Abs(score));
        }

        Assert.True(scale > 0);
        for (int q = 0; q < cpu.GetLength(0); q++)
        {
            for (int t = 0; t < cpu.GetLength(1); t++)
            {
                Assert.True(Math.Abs(gpu[q, t] - cpu[q, t]) <= 1e-4 * scale, $"score ({q}, {t}): {gpu[q, t]:R} on the GPU path, {cpu[q, t]:R} on the CPU");
            }
        }

        // float32 on the device: close, but not the CPU's float64 bits (the GPU path did run).
        Assert.NotEqual(cpu.Cast<double>(), gpu.Cast<double>());
    }
}
