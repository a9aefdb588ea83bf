using DataMarket.Compute;
using DataMarket.Valuation.LoGra;

namespace DataMarket.LoGra.Tests;

public sealed class gradient_store
{
    private static ProjectionSet Projections(ulong modelSeed = 3) =>
        ProjectionSet.Create(Problems.Mlp<float>(4, 6, 3, modelSeed), new ProjectionOptions { Rank = 3, Seed = 2 });

    private static float[] RandomRows(int rows, int dimension)
    {
        var values = new float[rows * dimension];
        new SeededRandom(8).FillNormal<float>(values, 0f, 1f);
        return values;
    }

    [Theory]
    [InlineData(GradientDType.Float32, 0)]
    [InlineData(GradientDType.Float32, 1)]
    [InlineData(GradientDType.Float32, 37)]
    [InlineData(GradientDType.Float64, 37)]
    [InlineData(GradientDType.Float16, 37)]
    public void round_trips_rows_and_ids_through_a_small_append_buffer(GradientDType dtype, int rows)
    {
        using var folder = new TempFolder();
        var projections = Projections();
        var values = RandomRows(rows, projections.Dimension);
        var ids = Enumerable.Range(0, rows).Select(i => $"example-{i}").ToList();
        // A buffer of about two rows forces many flushes.
        using (var writer = new GradientStoreWriter(folder.Sub("store"), projections, dtype, bufferBytes: 2 * projections.Dimension * 8 + 5))
        {
            for (int start = 0; start < rows; start += 5)
            {
                int count = Math.Min(5, rows - start);
                writer.Append<float>(values.AsSpan(start * projections.Dimension, count * projections.Dimension), ids.GetRange(start, count));
            }

            writer.Complete().Dispose();
        }

        using var store = GradientStore.Open(folder.Sub("store"), projections.ModelFingerprint);
        Assert.Equal(rows, store.Count);
        Assert.Equal(ids, store.Ids);
        Assert.Equal(projections.Layers.Select(l => l.Name), store.Header.Layers.Select(l => l.Name));
        var read = new double[rows * projections.Dimension];
        store.ReadRows(0, rows, read);
        for (int i = 0; i < read.Length; i++)
        {
            double expected = dtype == GradientDType.Float16 ? (double)(Half)values[i] : values[i];
            Assert.Equal(expected, read[i]);
        }

        var reloaded = store.LoadProjections();
        Assert.Equal(projections.Dimension, reloaded.Dimension);
        Assert.Equal(projections.Layers[1].OutputProjection, reloaded.Layers[1].OutputProjection);
    }

    [Fact]
    public void refuses_a_value_that_overflows_float16_and_leaves_nothing()
    {
        using var folder = new TempFolder();
        var projections = Projections();
        var row = new float[projections.Dimension];
        row[3] = 1e6f;
        using (var writer = new GradientStoreWriter(folder.Sub("store"), projections, GradientDType.Float16))
        {
            var error = Assert.Throws<LograException>(() => writer.Append<float>(row, ["big"]));
            Assert.Contains("overflows float16", error.Message);
        }

        Assert.False(Directory.Exists(folder.Sub("store")));
    }

    [Fact]
    public void from_another_model_is_rejected_with_a_clear_error()
    {
        using var folder = new TempFolder();
        var projections = Projections(modelSeed: 3);
        using (var writer = new GradientStoreWriter(folder.Sub("store"), projections))
        {
            writer.Append<float>(RandomRows(2, projections.Dimension), ["a", "b"]);
            writer.Complete().Dispose();
        }

        var other = ModelFingerprints.Compute(Problems.Mlp<float>(4, 6, 3, seed: 4));
        var error = Assert.Throws<LograException>(() => GradientStore.Open(folder.Sub("store"), other));
        Assert.Contains("logged from model", error.Message);
        Assert.Contains("another model", error.Message);
    }

    [Fact]
    public void an_incomplete_write_leaves_nothing_behind()
    {
        using var folder = new TempFolder();
        var projections = Projections();
        var directory = folder.Sub("store");
        using (var writer = new GradientStoreWriter(directory, projections))
        {
            writer.Append<float>(RandomRows(3, projections.Dimension), ["a", "b", "c"]);
        }

        Assert.False(Directory.Exists(directory));
        Assert.Throws<LograException>(() => GradientStore.Open(directory));
    }

    [Fact]
    public void shards_from_different_projections_do_not_concatenate()
    {
        using var folder = new TempFolder();
        var first = Projections();
        var second = ProjectionSet.Create(Problems.Mlp<float>(4, 6, 3), new ProjectionOptions { Rank = 3, Seed = 99 });
        foreach (var (projections, name) in new[] { (first, "a"), (second, "b") })
        {
            using var writer = new GradientStoreWriter(folder.Sub(name), projections);
            writer.Append<float>(RandomRows(1, projections.Dimension), ["x"]);
            writer.Complete().Dispose();
        }

        Assert.Throws<LograException>(() => GradientStore.Concatenate(folder.Sub("c"), [folder.Sub("a"), folder.Sub("b")]));
        Assert.False(GradientStore.Exists(folder.Sub("c")));
    }

    [Fact]
    public void a_rank_larger_than_a_layer_or_a_filter_matching_no_layer_is_an_error()
    {
        var model = Problems.Mlp<float>(4, 6, 3);
        var rank = Assert.Throws<LograException>(() => ProjectionSet.Create(model, new ProjectionOptions { Rank = 7 }));
        Assert.Contains("Rank 7 is larger than layer 'layers.0' (4 -> 6)", rank.Message);
        var filter = Assert.Throws<LograException>(() => ProjectionSet.Create(model, new ProjectionOptions { WatchedLayers = ["attention"] }));
        Assert.Contains("layers.0, layers.2", filter.Message);

        var watched = ProjectionSet.Create(model, new ProjectionOptions { Rank = 6, WatchedLayers = ["layers.2"] });
        Assert.Equal("layers.2", Assert.Single(watched.Layers).Name);
        Assert.Equal((6, 3), (watched.Layers[0].InputRank, watched.Layers[0].OutputRank)); // clamped to the 3 outputs
    }
}
