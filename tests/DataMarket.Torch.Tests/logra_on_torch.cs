using DataMarket.Torch.Influence;
using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Tests;

public class logra_on_torch
{
    public logra_on_torch() => TorchRuntime.Initialize("cpu");

    // A small classification problem: 3 classes from the signs of two features.
    private static (Tensor X, Tensor Y) Data(int rows, ScalarType dtype, int seed)
    {
        var generator = new torch.Generator((ulong)seed);
        var x = torch.randn(rows, 5, dtype: float64, generator: generator);
        var y = x[.., 0].gt(0).to(int64) + x[.., 1].gt(0).to(int64);
        return (x.to(dtype), y);
    }

    private static TabularMlp Model(ScalarType dtype)
    {
        var (x, y) = Data(80, float32, 11);
        var model = ProxyTraining.TrainMlp(ModelConfig.ForMlp(5, [12, 8], 3), x, y, new TrainingOptions(Epochs: 5, BatchSize: 16, Seed: 5));
        model.to(dtype);
        return model;
    }

    private static Func<Tensor, Tensor> SummedLoss(TabularMlp model, Tensor x, Tensor y) =>
        batch => nn.functional.cross_entropy(model.forward(x.index(batch)), y.index(batch), reduction: nn.Reduction.Sum);

    // Independent of the hooks: one backward per example, reading W.grad.
    private static Tensor ExplicitGradients(TabularMlp model, Func<Tensor, Tensor> loss, long rows)
    {
        var weights = model.named_parameters().Where(p => p.name.EndsWith(".weight", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        var result = new List<Tensor>();
        for (long i = 0; i < rows; i++)
        {
            model.zero_grad();
            loss(torch.tensor(new[] { i })).backward();
            result.Add(torch.cat(weights.Select(w => w.grad!.flatten().clone()).ToList(), 0));
        }

        return torch.stack(result);
    }

    [Fact]
    public void Training_stops_at_a_cancelled_token_and_trains_the_same_bits_with_a_live_one()
    {
        var (x, y) = Data(80, float32, 11);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() =>
            ProxyTraining.TrainMlp(ModelConfig.ForMlp(5, [12, 8], 3), x, y, new TrainingOptions(Epochs: 5, BatchSize: 16, Seed: 5), cancelled.Token));

        using var live = new CancellationTokenSource();
        using var withToken = ProxyTraining.TrainMlp(ModelConfig.ForMlp(5, [12, 8], 3), x, y, new TrainingOptions(Epochs: 5, BatchSize: 16, Seed: 5), live.Token);
        using var without = ProxyTraining.TrainMlp(ModelConfig.ForMlp(5, [12, 8], 3), x, y, new TrainingOptions(Epochs: 5, BatchSize: 16, Seed: 5));
        Assert.All(withToken.parameters().Zip(without.parameters()), pair => Assert.True(pair.First.eq(pair.Second).all().item<bool>()));
    }

    [Fact]
    public void projected_gradients_match_explicit_per_example_gradients_projected_on_both_sides()
    {
        var model = Model(float32);
        var (x, y) = Data(20, float32, 2);
        var loss = SummedLoss(model, x, y);
        using var logra = TorchLogra.Create(model, new TorchLograOptions { Rank = 4, Seed = 9, BatchSize = 6 }, 20, loss);
        using var store = logra.Log(20, loss);

        using var dense = ExplicitGradients(model, loss, 20);
        long denseOffset = 0;
        foreach (var projection in logra.Projections)
        {
            long outputs = projection.Out.shape[1], inputs = projection.In.shape[1];
            var g = dense.narrow(1, denseOffset, outputs * inputs).reshape(20, outputs, inputs);
            var expected = projection.Out.matmul(g).matmul(projection.In.t()).reshape(20, -1);
            var actual = store.narrow(1, projection.Offset, projection.Size);
            var relative = (actual - expected).norm().item<float>() / expected.norm().item<float>();
            Assert.True(relative < 1e-5, $"{projection.Name}: relative error {relative}");
            denseOffset += outputs * inputs;
        }
    }

    [Fact]
    public void float64_scores_match_a_dense_float64_influence_and_float32_is_within_1e_4()
    {
        const double damping = 1e-3;
        var (x, y) = Data(30, float64, 3);
        var (q, qy) = Data(6, float64, 4);
        var model = Model(float64);
        var train = SummedLoss(model, x, y);
        var test = SummedLoss(model, q, qy);

        // Dense reference: explicit full per-layer gradients, F = GᵀG/N per layer, scores gq (F+λI)⁻¹ gtᵀ by linalg.solve.
        using var g = ExplicitGradients(model, train, 30);
        using var gq = ExplicitGradients(model, test, 6);
        var expected = torch.zeros(6, 30, dtype: float64);
        long offset = 0;
        foreach (var (_, w) in model.named_parameters().Where(p => p.name.EndsWith(".weight", StringComparison.Ordinal)))
        {
            var size = w.numel();
            var gl = g.narrow(1, offset, size);
            var fisher = gl.t().matmul(gl) / 30 + torch.eye(size, dtype: float64) * damping;
            expected += gq.narrow(1, offset, size).matmul(torch.linalg.solve(fisher, gl.t()));
            offset += size;
        }

        var options = new TorchLograOptions { Init = ProjectionInit.Identity, Damping = damping, StoreType = float64, BatchSize = 7, ChunkRows = 8 };
        using (var logra = TorchLogra.Create(model, options, 30, train))
        {
            using var store = logra.Log(30, train);
            logra.Fit(store);
            using var scores = logra.Score(logra.Log(6, test), store, InfluenceMode.Dot);
            var relative = (scores - expected).norm().item<double>() / expected.norm().item<double>();
            Assert.True(relative < 1e-6, $"float64 store: relative error {relative}");
        }

        var model32 = Model(float32);
        var (x32, q32) = (x.to(float32), q.to(float32));
        var train32 = SummedLoss(model32, x32, y);
        using (var logra = TorchLogra.Create(model32, options with { StoreType = float32 }, 30, train32))
        {
            using var store = logra.Log(30, train32);
            logra.Fit(store);
            using var scores = logra.Score(logra.Log(6, SummedLoss(model32, q32, qy)), store, InfluenceMode.Dot);
            var relative = (scores - expected).norm().item<double>() / expected.norm().item<double>();
            Assert.True(relative < 1e-4, $"float32 store: relative error {relative}");
        }
    }

    [Fact]
    public void projected_gradients_of_a_padded_gpt_batch_equal_each_text_backpropagated_alone()
    {
        var texts = new[] { "a longer text that fills the context", "short", "", "mid length" };
        var config = ModelConfig.ForGpt(contextLength: 16, layers: 1, heads: 2, width: 8);
        var (tokens, valid) = TextInfluence.Encode(texts, config.ContextLength, CPU);
        var model = ProxyTraining.TrainGpt(config, tokens, valid, new TrainingOptions(Epochs: 2, BatchSize: 2, Seed: 3));
        var targets = ProxyTraining.NextTokenTargets(tokens, valid);
        Tensor Loss(Tensor batch) => nn.functional.cross_entropy(model.forward(tokens.index(batch), valid.index(batch)).flatten(0, 1),
            targets.index(batch).flatten(), ignore_index: -100, reduction: nn.Reduction.Sum);

        using var logra = TorchLogra.Create(model, new TorchLograOptions { Rank = 4 }, texts.Length, Loss);
        using var together = logra.Gradients(torch.arange(texts.Length, dtype: int64), Loss);
        for (var i = 0; i < texts.Length; i++)
        {
            using var alone = logra.Gradients(torch.tensor(new long[] { i }), Loss).to(float64);
            var difference = (together[i].unsqueeze(0).to(float64) - alone).norm().item<double>();
            Assert.True(difference <= 1e-5 * alone.norm().item<double>(), $"text {i}: padded batch vs alone differ by {difference}");
        }

        // The empty text has no next token: no loss, so a zero gradient.
        Assert.Equal(0.0, together[2].abs().max().item<float>());
        Assert.True(together[0].abs().max().item<float>() > 0);
    }

    [Fact]
    public void scores_do_not_depend_on_batch_size_or_on_splitting_the_store_by_rows()
    {
        var model = Model(float32);
        var (x, y) = Data(40, float32, 5);
        var (q, qy) = Data(5, float32, 6);
        var train = SummedLoss(model, x, y);
        var test = SummedLoss(model, q, qy);

        Tensor Run(int batch, int chunk)
        {
            using var logra = TorchLogra.Create(model, new TorchLograOptions { Rank = 4, BatchSize = batch, ChunkRows = chunk, StoreType = float64 }, 40, train);
            using var store = logra.Log(40, train);
            logra.Fit(store);
            return logra.Score(logra.Log(5, test), store, InfluenceMode.Dot);
        }

        using var reference = Run(64, 1024);
        using var otherBatch = Run(3, 1024);
        using var splitStore = Run(64, 7);
        // The model runs in float32, so a batch of another size may round a gradient's last bit differently.
        Assert.True(Relative(otherBatch, reference) < 1e-6, $"batch size changed the scores by {Relative(otherBatch, reference)}");
        Assert.True(Relative(splitStore, reference) < 1e-12, $"store chunking changed the scores by {Relative(splitStore, reference)}");
    }

    [Fact]
    public void self_influence_is_the_diagonal_of_train_on_train_and_cosine_ignores_gradient_scale()
    {
        var model = Model(float32);
        var (x, y) = Data(25, float32, 7);
        var train = SummedLoss(model, x, y);
        using var logra = TorchLogra.Create(model, new TorchLograOptions { Rank = 4, StoreType = float64 }, 25, train);
        using var store = logra.Log(25, train);
        logra.Fit(store);

        using var self = logra.SelfInfluence(store);
        using var pairwise = logra.Score(store, store, InfluenceMode.Dot);
        Assert.True(self.allclose(pairwise.diagonal(), rtol: 1e-9, atol: 1e-12));

        using var cosine = logra.Score(store.narrow(0, 0, 3), store, InfluenceMode.Cosine);
        var scaled = store.clone();
        scaled[TensorIndex.Slice(10, 20)] *= 7.0;
        using var cosineScaled = logra.Score(store.narrow(0, 0, 3), scaled, InfluenceMode.Cosine);
        Assert.True(cosine.narrow(1, 10, 10).allclose(cosineScaled.narrow(1, 10, 10), rtol: 1e-9, atol: 1e-12));
    }

    private static double Relative(Tensor actual, Tensor expected) => (actual - expected).norm().item<double>() / expected.norm().item<double>();
}
