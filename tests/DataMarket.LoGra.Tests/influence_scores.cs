using DataMarket.Compute;
using DataMarket.Learning.Models;
using DataMarket.Valuation.LoGra;

namespace DataMarket.LoGra.Tests;

public sealed class influence_scores
{
    private const int Inputs = 3, Hidden = 5, Classes = 3;

    private static (TabularGradientSource<T> Train, TabularGradientSource<T> Query, MlpModel<T> Model) TinyProblem<T>(int trainRows = 40)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var model = Problems.Mlp<T>(Inputs, Hidden, Classes);
        var (trainFeatures, trainLabels) = Problems.Blobs(trainRows, Inputs, Classes, seed: 1, spread: 1.5);
        var (queryFeatures, queryLabels) = Problems.Blobs(6, Inputs, Classes, seed: 2, spread: 1.5);
        return (new TabularGradientSource<T>(model, Problems.Cast<T>(trainFeatures), trainLabels),
            new TabularGradientSource<T>(model, Problems.Cast<T>(queryFeatures), queryLabels), model);
    }

    private static double[,] Scores<T>(IGradientSource<T> train, IGradientSource<T> query, ProjectionSet projections, string directory,
        GradientDType dtype, Preconditioning hessian = Preconditioning.Raw, ScoreMode mode = ScoreMode.Dot, double? damping = null)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        using var store = Problems.Log(train, projections, directory, dtype);
        var scorer = new InfluenceScorer(store, Preconditioner.Fit(store, hessian, damping, ComputeBackends.Managed), ComputeBackends.Managed);
        return scorer.Pairwise(Problems.Gradients(query, projections), mode);
    }

    [Theory]
    [InlineData(40)] // N >= D: Cholesky of C + λI
    [InlineData(9)] // N < D = 15: the Woodbury form
    public void with_identity_projections_raw_influence_equals_the_dense_float64_block_computation(int trainRows)
    {
        using var folder = new TempFolder();
        var (train, query, model) = TinyProblem<double>(trainRows);
        var actual = Scores(train, query, ProjectionSet.Create(model, new ProjectionOptions { Init = ProjectionInit.Identity }), folder.Sub("store"), GradientDType.Float64);

        // Reference: full per-example weight gradients from the double layers, one example at a time.
        var layers = ProjectionSet.NamedLinearLayers(model).Select(l => l.Layer).ToList();
        double[][][] FullGradients(TabularGradientSource<double> source) => Enumerable.Range(0, source.ExampleCount).Select(e =>
        {
            model.ZeroGradients();
            source.ForwardBackward([e]);
            return layers.Select(l => (double[])l.Weight.Gradient.Clone()).ToArray();
        }).ToArray();
        var trainGradients = FullGradients(train);
        var queryGradients = FullGradients(query);
        var expected = new double[query.ExampleCount, train.ExampleCount];
        for (int l = 0; l < layers.Count; l++)
        {
            int d = layers[l].Weight.Value.Length;
            var fisher = new double[d, d];
            foreach (var g in trainGradients)
            {
                for (int i = 0; i < d; i++)
                {
                    for (int j = 0; j < d; j++)
                    {
                        fisher[i, j] += g[l][i] * g[l][j] / train.ExampleCount;
                    }
                }
            }

            double lambda = 0;
            for (int i = 0; i < d; i++)
            {
                lambda += 0.1 * fisher[i, i] / d;
            }

            for (int i = 0; i < d; i++)
            {
                fisher[i, i] += lambda;
            }

            for (int q = 0; q < query.ExampleCount; q++)
            {
                var solved = Solve(fisher, queryGradients[q][l]);
                for (int t = 0; t < train.ExampleCount; t++)
                {
                    expected[q, t] += solved.Select((v, i) => v * trainGradients[t][l][i]).Sum();
                }
            }
        }

        double error = Problems.MaxRelativeError(actual, expected);
        Assert.True(error < 1e-6, $"relative error {error:E2}");
    }

    [Fact]
    public void do_not_change_when_each_layer_projection_is_rescaled()
    {
        using var folder = new TempFolder();
        var (train, query, model) = TinyProblem<double>();
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 2, Seed = 4 });
        var baseline = Scores(train, query, projections, folder.Sub("a"), GradientDType.Float64);
        var rescaled = Scores(train, query, projections.Scaled([(3f, 0.25f), (0.5f, 7f)]), folder.Sub("b"), GradientDType.Float64);

        // P is held in float32, so 3·P and 7·P are rounded (about 6e-8 relative); nothing else may move the scores.
        double error = Problems.MaxRelativeError(rescaled, baseline);
        Assert.True(error < 1e-6, $"relative error {error:E2}");
    }

    [Fact]
    public void with_full_rank_pca_projections_equal_the_identity_projection_scores()
    {
        using var folder = new TempFolder();
        var (train, query, model) = TinyProblem<double>();
        var covariances = new CovarianceAccumulator<double>(model, null, ComputeBackends.Managed);
        covariances.Accumulate(train, batchSize: 8);
        var pca = ProjectionSet.FromCovariances(covariances, new ProjectionOptions { Rank = Hidden, Init = ProjectionInit.Pca }, ComputeBackends.Managed);
        // Rows of P are orthonormal eigenvectors (to float32 precision).
        var first = pca.Layers[0];
        for (int a = 0; a < first.InputRank; a++)
        {
            for (int b = 0; b < first.InputRank; b++)
            {
                double dot = 0;
                for (int i = 0; i < first.InputWidth; i++)
                {
                    dot += (double)first.InputProjection[a * first.InputWidth + i] * first.InputProjection[b * first.InputWidth + i];
                }

                Assert.Equal(a == b ? 1.0 : 0.0, dot, 1e-6);
            }
        }

        var identity = Scores(train, query, ProjectionSet.Create(model, new ProjectionOptions { Init = ProjectionInit.Identity }), folder.Sub("a"), GradientDType.Float64);
        var rotated = Scores(train, query, pca, folder.Sub("b"), GradientDType.Float64);
        double error = Problems.MaxRelativeError(rotated, identity);
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }

    [Theory]
    [InlineData(Preconditioning.Raw)]
    [InlineData(Preconditioning.Identity)]
    public void self_influence_is_the_diagonal_of_the_pairwise_matrix(Preconditioning hessian)
    {
        using var folder = new TempFolder();
        var (train, _, model) = TinyProblem<float>();
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 3 });
        using var store = Problems.Log(train, projections, folder.Sub("store"), GradientDType.Float32);
        var scorer = new InfluenceScorer(store, Preconditioner.Fit(store, hessian, null, ComputeBackends.Managed), ComputeBackends.Managed, chunkRows: 7);
        var pairwise = scorer.Pairwise(Problems.Gradients(train, projections));
        var self = scorer.SelfInfluence();

        for (int i = 0; i < self.Length; i++)
        {
            Assert.Equal(pairwise[i, i], self[i], Math.Abs(self[i]) * 1e-6);
            Assert.True(self[i] >= 0);
        }
    }

    [Fact]
    public void do_not_depend_on_batch_size_chunk_size_or_store_sharding()
    {
        using var folder = new TempFolder();
        var (train, query, model) = TinyProblem<float>();
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 4 });
        var queries = Problems.Gradients(query, projections, batchSize: 6);

        using var whole = Problems.Log(train, projections, folder.Sub("whole"), GradientDType.Float32, batchSize: 1);
        var baseline = new InfluenceScorer(whole, Preconditioner.Fit(whole, Preconditioning.Raw, null, ComputeBackends.Managed), ComputeBackends.Managed).Pairwise(queries);

        // Three shards over consecutive ranges, each logged with its own batch size, then concatenated.
        var shardDirectories = new List<string>();
        int[] bounds = [0, 13, 14, 40];
        int[] batchSizes = [5, 1, 9];
        for (int s = 0; s < 3; s++)
        {
            var shard = new SubsetSource(train, bounds[s], bounds[s + 1]);
            var directory = folder.Sub($"shard{s}");
            Problems.Log(shard, projections, directory, GradientDType.Float32, batchSizes[s]).Dispose();
            shardDirectories.Add(directory);
        }

        using var concatenated = GradientStore.Concatenate(folder.Sub("concatenated"), shardDirectories);
        Assert.Equal(40, concatenated.Count);
        var sharded = new InfluenceScorer(concatenated, Preconditioner.Fit(concatenated, Preconditioning.Raw, null, ComputeBackends.Managed), ComputeBackends.Managed, chunkRows: 3)
            .Pairwise(queries);

        double error = Problems.MaxRelativeError(sharded, baseline);
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }

    [Fact]
    public void cosine_scores_do_not_change_when_a_training_gradient_is_scaled()
    {
        using var folder = new TempFolder();
        var (train, query, model) = TinyProblem<double>();
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 3 });
        var rows = Problems.Gradients(train, projections);
        var scaled = (double[])rows.Values.Clone();
        for (int i = 0; i < rows.Dimension; i++)
        {
            scaled[5 * rows.Dimension + i] *= 3.5;
        }

        double[,] Cosine(double[] values, string name)
        {
            using var writer = new GradientStoreWriter(folder.Sub(name), projections, GradientDType.Float64);
            writer.Append<double>(values, Enumerable.Range(0, rows.Rows).Select(i => $"row{i}").ToList());
            using var store = writer.Complete();
            return new InfluenceScorer(store, Preconditioner.Identity(store.Header.Layers), ComputeBackends.Managed).Pairwise(Problems.Gradients(query, projections), ScoreMode.Cosine);
        }

        var before = Cosine(rows.Values, "before");
        var after = Cosine(scaled, "after");
        Assert.True(Problems.MaxRelativeError(after, before) < 1e-12);
    }

    private static double[] Solve(double[,] matrix, double[] rightHandSide)
    {
        // Gaussian elimination with partial pivoting: an independent float64 reference.
        int n = rightHandSide.Length;
        var a = (double[,])matrix.Clone();
        var b = (double[])rightHandSide.Clone();
        for (int column = 0; column < n; column++)
        {
            int pivot = column;
            for (int r = column + 1; r < n; r++)
            {
                if (Math.Abs(a[r, column]) > Math.Abs(a[pivot, column]))
                {
                    pivot = r;
                }
            }

            for (int c = 0; c < n; c++)
            {
                (a[column, c], a[pivot, c]) = (a[pivot, c], a[column, c]);
            }

            (b[column], b[pivot]) = (b[pivot], b[column]);
            for (int r = column + 1; r < n; r++)
            {
                double factor = a[r, column] / a[column, column];
                for (int c = column; c < n; c++)
                {
                    a[r, c] -= factor * a[column, c];
                }

                b[r] -= factor * b[column];
            }
        }

        var x = new double[n];
        for (int r = n - 1; r >= 0; r--)
        {
            double sum = b[r];
            for (int c = r + 1; c < n; c++)
            {
                sum -= a[r, c] * x[c];
            }

            x[r] = sum / a[r, r];
        }

        return x;
    }

    private sealed class SubsetSource(TabularGradientSource<float> inner, int start, int end) : IGradientSource<float>
    {
        public Model<float> Model => inner.Model;

        public int ExampleCount => end - start;

        public bool[]? ForwardBackward(ReadOnlySpan<int> exampleIndices)
        {
            var shifted = exampleIndices.ToArray().Select(i => i + start).ToArray();
            return inner.ForwardBackward(shifted);
        }
    }
}
