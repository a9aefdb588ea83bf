using DataMarket.Valuation.Shapley;

namespace DataMarket.Valuation.Tests.Shapley;

public class shapley_benchmark
{
    [Fact]
    public void generates_the_same_problem_for_the_same_arguments()
    {
        var (trainA, testA) = ShapleyBenchmark.GenerateProblem(500, 20, 7, seed: 3);
        var (trainB, testB) = ShapleyBenchmark.GenerateProblem(500, 20, 7, seed: 3);
        Assert.Equal(trainA.Features, trainB.Features);
        Assert.Equal(trainA.Classes, trainB.Classes);
        Assert.Equal(testA.Features, testB.Features);
        Assert.Equal(500, trainA.Count);
        Assert.Equal(7, testA.FeatureCount);
    }

    [Fact]
    public void a_small_run_reports_times_per_test_point()
    {
        var result = ShapleyBenchmark.RunClassification(3000, 8, 32, k: 5);
        Assert.Equal(3000, result.TrainingPoints);
        Assert.Equal(8, result.TestPoints);
        Assert.True(result.WallSeconds > 0);
        Assert.True(result.CpuSeconds >= 0);
        Assert.Equal(result.CpuSeconds / 8, result.CpuSecondsPerTestPoint, 1e-12);
        Assert.InRange(result.TotalUtility, 0, 1);
    }
}
