using System.Text;
using DataMarket.Compute;
using DataMarket.Learning.Losses;
using DataMarket.Learning.Models;
using DataMarket.Learning.Optimizers;
using DataMarket.Learning.Training;

namespace DataMarket.Learning.Tests;

public static class SyntheticData
{
    /// <summary>
    /// Labels from a fixed random teacher (tanh hidden layer, argmax over classes); points whose top two
    /// teacher logits are within 0.1 are dropped so that the labels are a deterministic function with a margin.
    /// </summary>
    public static (float[] Features, int[] Labels) TeacherClassification(int count, int width, int classes, ulong seed)
    {
        var teacherRandom = new SeededRandom(12345);
        var hidden = new double[16 * width];
        var output = new double[classes * 16];
        teacherRandom.FillNormal(hidden, 0.0, 1.0 / Math.Sqrt(width));
        teacherRandom.FillNormal(output, 0.0, 1.0);
        var random = new SeededRandom(seed);
        var features = new List<float>();
        var labels = new List<int>();
        var x = new double[width];
        while (labels.Count < count)
        {
            random.FillNormal(x, 0.0, 1.0);
            var h = Enumerable.Range(0, 16).Select(j => Math.Tanh(Enumerable.Range(0, width).Sum(i => hidden[j * width + i] * x[i]))).ToArray();
            var logits = Enumerable.Range(0, classes).Select(c => Enumerable.Range(0, 16).Sum(j => output[c * 16 + j] * h[j])).ToArray();
            var sorted = logits.OrderDescending().ToArray();
            if (sorted[0] - sorted[1] < 0.1)
            {
                continue;
            }
            features.AddRange(x.Select(v => (float)v));
            labels.Add(Array.IndexOf(logits, sorted[0]));
        }
        return (features.ToArray(), labels.ToArray());
    }

    /// <summary>Sentences from a tiny grammar; byte-level, so the unigram entropy is measured over bytes.</summary>
    public static byte[] GeneratedText(int sentences, ulong seed)
    {
        string[] subjects = ["the cat", "a dog", "my friend", "the old man", "our teacher"];
        string[] verbs = ["sees", "likes", "finds", "carries", "paints"];
        string[] objects = ["the ball", "a red box", "the garden", "some bread", "the river"];
        var random = new SeededRandom(seed);
        var text = new StringBuilder();
        for (int i = 0; i < sentences; i++)
        {
            text.Append(subjects[random.NextInt(subjects.Length)]).Append(' ')
                .Append(verbs[random.NextInt(verbs.Length)]).Append(' ')
                .Append(objects[random.NextInt(objects.Length)]).Append(". ");
        }
        return Encoding.ASCII.GetBytes(text.ToString());
    }

    public static double UnigramEntropy(byte[] text)
    {
        var counts = new double[256];
        foreach (byte b in text)
        {
            counts[b]++;
        }
        return -counts.Where(c => c > 0).Sum(c => c / text.Length * Math.Log(c / text.Length));
    }
}

public class training_models
{
    [Fact]
    public void mlp_classifier_reaches_95_percent_test_accuracy()
    {
        var (trainX, trainY) = SyntheticData.TeacherClassification(3000, 8, 3, seed: 1);
        var (testX, testY) = SyntheticData.TeacherClassification(1000, 8, 3, seed: 2);
        var model = new MlpModel<float>(new MlpOptions(8, [64, 64], 3, Activation.Relu, Seed: 3));
        var optimizer = new AdamW<float>(model.Parameters, learningRate: 3e-3, weightDecay: 1e-4);
        int progressCalls = 0;
        var summary = Trainer.Fit(new ClassificationTask<float>(model, trainX, trainY), optimizer,
            new TrainerOptions(Epochs: 30, BatchSize: 64, Seed: 4), _ => progressCalls++);
        var predictions = model.PredictClasses(testX, testY.Length);
        double accuracy = predictions.Zip(testY).Count(p => p.First == p.Second) / (double)testY.Length;
        Assert.True(accuracy >= 0.95, $"test accuracy {accuracy:P1}, final loss {summary.FinalLoss:F4}");
        Assert.Equal(summary.Steps, progressCalls);
    }

    [Fact]
    public void mlp_regressor_fits_a_smooth_function()
    {
        var random = new SeededRandom(5);
        const int count = 1000;
        var x = new float[count * 2];
        random.FillUniform(x, -1f, 1f);
        var y = Enumerable.Range(0, count).Select(i => MathF.Sin(2 * x[2 * i]) * x[2 * i + 1]).ToArray();
        var model = new MlpModel<float>(new MlpOptions(2, [32, 32], 1, Activation.Tanh, Seed: 6));
        var summary = Trainer.Fit(new RegressionTask<float>(model, x, y), new AdamW<float>(model.Parameters, 1e-2, weightDecay: 0),
            new TrainerOptions(Epochs: 60, BatchSize: 50, Seed: 7));
        double variance = y.Select(v => (double)v * v).Average() - Math.Pow(y.Average(), 2);
        Assert.True(summary.MeanLastEpochLoss < 0.05 * variance, $"MSE {summary.MeanLastEpochLoss:E2} vs variance {variance:E2}");
    }

    [Fact]
    public void sgd_with_momentum_reduces_the_loss()
    {
        var (trainX, trainY) = SyntheticData.TeacherClassification(500, 8, 3, seed: 8);
        var model = new MlpModel<float>(new MlpOptions(8, [32], 3, Seed: 9));
        var task = new ClassificationTask<float>(model, trainX, trainY);
        double before = task.ForwardBackward(Enumerable.Range(0, 500).ToArray());
        var summary = Trainer.Fit(task, new Sgd<float>(model.Parameters, 0.05, momentum: 0.9), new TrainerOptions(Epochs: 10, BatchSize: 32, Seed: 10));
        Assert.True(summary.MeanLastEpochLoss < 0.5 * before, $"loss {before:F3} -> {summary.MeanLastEpochLoss:F3}");
    }

    [Fact]
    public void gpt_loss_falls_well_below_the_unigram_entropy()
    {
        var text = SyntheticData.GeneratedText(600, seed: 11);
        int split = text.Length * 9 / 10;
        var train = text[..split];
        var heldOut = text[split..];
        double unigram = SyntheticData.UnigramEntropy(train);
        var model = new GptModel<float>(new GptOptions(ContextLength: 16, Layers: 1, Heads: 2, Width: 32, Seed: 12));
        var task = new LanguageModelTask<float>(model, train, stride: 4);
        var optimizer = new AdamW<float>(model.Parameters, learningRate: 1e-2, weightDecay: 0.01);
        Trainer.Fit(task, optimizer, new TrainerOptions(Epochs: 20, BatchSize: 16, Seed: 13, MaxSteps: 150));
        var heldOutTask = new LanguageModelTask<float>(model, heldOut, stride: 16);
        var (tokens, targets) = heldOutTask.Window(Enumerable.Range(0, heldOutTask.ExampleCount).ToArray());
        double loss = model.Loss(tokens, targets, new BatchShape(heldOutTask.ExampleCount, 16));
        Console.WriteLine($"GPT held-out loss {loss:F3} nats, unigram {unigram:F3}");
        Assert.True(loss < 0.5 * unigram, $"held-out loss {loss:F3} nats vs unigram entropy {unigram:F3} nats");
    }

    [Fact]
    public void linear_hooks_hand_out_per_example_inputs_and_output_gradients()
    {
        var model = new GptModel<double>(new GptOptions(ContextLength: 6, Layers: 1, Heads: 2, Width: 8, Seed: 14));
        var linears = model.LinearLayers;
        Assert.Equal(5, linears.Count); // qkv, attention proj, mlp fc, mlp proj, lm head
        var captured = new List<Layers.LinearActivations<double>>();
        foreach (var linear in linears)
        {
            linear.CaptureActivations = true;
            linear.ActivationsCaptured += captured.Add;
        }
        var random = new SeededRandom(15);
        var tokens = Enumerable.Range(0, 18).Select(_ => random.NextInt(256)).ToArray();
        var targets = Enumerable.Range(0, 18).Select(_ => random.NextInt(256)).ToArray();
        model.ZeroGradients();
        model.ForwardBackward(tokens, targets, new BatchShape(3, 6), Reduction.Sum);
        Assert.Equal(5, captured.Count);
        foreach (var activations in captured)
        {
            // The weight gradient of the summed loss is the sum over examples of dy_eᵀ x_e.
            var linear = activations.Layer;
            var reconstructed = new double[linear.OutputWidth * linear.InputWidth];
            for (int e = 0; e < 3; e++)
            {
                var x = activations.Input(e);
                var dy = activations.OutputGradient(e);
                Assert.Equal(6 * linear.InputWidth, x.Length);
                Assert.Equal(6 * linear.OutputWidth, dy.Length);
                for (int t = 0; t < 6; t++)
                {
                    for (int o = 0; o < linear.OutputWidth; o++)
                    {
                        for (int i = 0; i < linear.InputWidth; i++)
                        {
                            reconstructed[o * linear.InputWidth + i] += dy[t * linear.OutputWidth + o] * x[t * linear.InputWidth + i];
                        }
                    }
                }
            }
            for (int i = 0; i < reconstructed.Length; i++)
            {
                Assert.Equal(linear.Weight.Gradient[i], reconstructed[i], 1e-10);
            }
        }
    }

    [Fact]
    public void whole_gpt_gradient_matches_finite_differences_in_float64()
    {
        var model = new GptModel<double>(new GptOptions(ContextLength: 4, Layers: 1, Heads: 2, Width: 8, VocabularySize: 11, Seed: 16));
        var random = new SeededRandom(17);
        var tokens = Enumerable.Range(0, 8).Select(_ => random.NextInt(11)).ToArray();
        var targets = Enumerable.Range(0, 8).Select(_ => random.NextInt(11)).ToArray();
        targets[3] = -100;
        var shape = new BatchShape(2, 4);
        model.ZeroGradients();
        model.ForwardBackward(tokens, targets, shape);
        foreach (var parameter in model.Parameters)
        {
            var indices = GradientCheck.Sample(parameter.Value.Length, 24, random);
            var numeric = GradientCheck.Numeric(() => model.Loss(tokens, targets, shape), parameter.Value, indices);
            double error = GradientCheck.RelativeError(indices.Select(i => parameter.Gradient[i]).ToArray(), numeric);
            Assert.True(error < GradientCheck.Tolerance, $"{parameter.Name}: relative error {error:E2}");
        }
    }
}
