using DataMarket.Compute;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Losses;

namespace DataMarket.Learning.Tests;

public class every_layer_backward_matches_central_finite_differences
{
    private static readonly BatchShape Shape = new(2, 3);

    public static TheoryData<string> Backends => new("managed", "openblas");

    private static ComputeBackend Backend(string name) =>
        name == "managed" ? ComputeBackends.Managed : ComputeBackends.Select(BackendKind.OpenBlas).Backend;

    [Theory]
    [MemberData(nameof(Backends))]
    public void linear_with_and_without_bias(string backend)
    {
        GradientCheck.CheckLayer(new Linear<double>(5, 7, bias: true, new SeededRandom(1), Backend(backend)), Shape, 5);
        GradientCheck.CheckLayer(new Linear<double>(5, 7, bias: false, new SeededRandom(2), Backend(backend)), Shape, 5);
    }

    [Fact]
    public void layer_norm() => GradientCheck.CheckLayer(RandomizedLayerNorm(6), Shape, 6);

    [Fact]
    public void gelu() => GradientCheck.CheckLayer(new Gelu<double>(), Shape, 4);

    [Fact]
    public void relu() => GradientCheck.CheckLayer(new Relu<double>(), Shape, 4);

    [Fact]
    public void tanh() => GradientCheck.CheckLayer(new Tanh<double>(), Shape, 4);

    [Theory]
    [MemberData(nameof(Backends))]
    public void causal_multi_head_self_attention(string backend) =>
        GradientCheck.CheckLayer(new CausalSelfAttention<double>(8, 2, new SeededRandom(3), Backend(backend)), new BatchShape(2, 5), 8);

    [Fact]
    public void residual_block() =>
        GradientCheck.CheckLayer(new Residual<double>(new Sequential<double>(new Linear<double>(4, 4, true, new SeededRandom(4)), new Tanh<double>())), Shape, 4);

    [Fact]
    public void transformer_block() =>
        GradientCheck.CheckLayer(new TransformerBlock<double>(8, 2, new SeededRandom(5)), new BatchShape(2, 4), 8);

    [Fact]
    public void embedding()
    {
        var random = new SeededRandom(6);
        var embedding = new Embedding<double>(10, 4, random, standardDeviation: 1);
        int[] tokens = [3, 1, 3, 9, 0];
        var weights = new double[tokens.Length * 4];
        random.FillNormal(weights, 0.0, 1.0);
        embedding.Forward(tokens);
        embedding.Backward(weights);
        var numeric = GradientCheck.Numeric(() => GradientCheck.Dot(embedding.Forward(tokens), weights), embedding.Weight.Value);
        Assert.True(GradientCheck.RelativeError(embedding.Weight.Gradient, numeric) < GradientCheck.Tolerance);
    }

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    public void softmax_cross_entropy_with_an_ignored_row(Reduction reduction)
    {
        var logits = new double[4 * 5];
        new SeededRandom(7).FillNormal(logits, 0.0, 2.0);
        int[] targets = [1, -100, 4, 0];
        var result = SoftmaxCrossEntropy.Compute<double>(logits, 5, targets, reduction);
        Assert.Equal(3, result.CountedRows);
        Assert.All(result.Gradient.AsSpan(5, 5).ToArray(), g => Assert.Equal(0.0, g));
        var numeric = GradientCheck.Numeric(() => SoftmaxCrossEntropy.Compute<double>(logits, 5, targets, reduction).Value, logits);
        Assert.True(GradientCheck.RelativeError(result.Gradient, numeric) < GradientCheck.Tolerance);
        double expected = 0;
        foreach (int r in new[] { 0, 2, 3 })
        {
            var row = logits.AsSpan(r * 5, 5).ToArray();
            expected += Math.Log(row.Sum(Math.Exp)) - row[targets[r]];
        }
        Assert.Equal(reduction == Reduction.Mean ? expected / 3 : expected, result.Value, 1e-12);
    }

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    public void mean_squared_error(Reduction reduction)
    {
        var predictions = new double[6];
        var targets = new double[6];
        new SeededRandom(8).FillNormal(predictions, 0.0, 1.0);
        new SeededRandom(9).FillNormal(targets, 0.0, 1.0);
        var result = MeanSquaredError.Compute<double>(predictions, targets, reduction);
        var numeric = GradientCheck.Numeric(() => MeanSquaredError.Compute<double>(predictions, targets, reduction).Value, predictions);
        Assert.True(GradientCheck.RelativeError(result.Gradient, numeric) < GradientCheck.Tolerance);
    }

    private static LayerNorm<double> RandomizedLayerNorm(int width)
    {
        // Non-trivial gamma and beta, so their gradients are not checked only at the identity.
        var layer = new LayerNorm<double>(width);
        new SeededRandom(10).FillNormal(layer.Gamma.Value, 1.0, 0.3);
        new SeededRandom(11).FillNormal(layer.Beta.Value, 0.0, 0.3);
        return layer;
    }
}
