using DataMarket.Compute;
using DataMarket.Learning;
using DataMarket.Learning.Layers;
using DataMarket.Learning.Models;
using DataMarket.Valuation.LoGra;

namespace DataMarket.LoGra.Tests;

public sealed class projected_gradients
{
    [Theory]
    [InlineData(7, 5, 3, 2, 1, 4)]
    [InlineData(13, 9, 13, 9, 5, 3)]
    [InlineData(33, 17, 8, 1, 11, 2)]
    [InlineData(1, 1, 1, 1, 2, 1)]
    [InlineData(64, 48, 16, 24, 9, 3)]
    public void equal_the_explicit_projection_of_the_full_per_example_gradient_with_padding_masked(int inputs, int outputs, int inputRank, int outputRank, int tokens, int batch)
    {
        var random = new SeededRandom((ulong)(inputs * 31 + tokens));
        var layer = new Linear<float>(inputs, outputs, bias: true, random, ComputeBackends.Managed) { CaptureActivations = true };
        var shape = new BatchShape(batch, tokens);
        var x = new float[shape.Rows * inputs];
        var dy = new float[shape.Rows * outputs];
        random.FillNormal<float>(x, 0f, 1f);
        random.FillNormal<float>(dy, 0f, 1f);
        // Every example keeps a different prefix of its tokens; the rest is padding.
        var mask = new bool[shape.Rows];
        for (int e = 0; e < batch; e++)
        {
            for (int t = 0; t < tokens; t++)
            {
                mask[e * tokens + t] = t < Math.Max(1, tokens - e);
            }
        }

        layer.Forward(x, shape);
        layer.Backward(dy);
        var inputProjection = new float[inputRank * inputs];
        var outputProjection = new float[outputRank * outputs];
        random.FillUniform<float>(inputProjection, -1f, 1f);
        random.FillUniform<float>(outputProjection, -1f, 1f);
        var projection = new LayerProjection("layer", inputs, outputs, inputProjection, inputRank, outputProjection, outputRank);
        int stride = projection.BlockSize + 3;
        var projected = new float[batch * stride];
        projection.Project(layer.LastActivations!, mask, projected, stride, columnOffset: 2, ComputeBackends.Managed);

        for (int e = 0; e < batch; e++)
        {
            // G = Σ_t dy_t x_tᵀ over unpadded tokens, then P_out G P_inᵀ, all in float64.
            var gradient = new double[outputs, inputs];
            for (int t = 0; t < tokens; t++)
            {
                int row = e * tokens + t;
                if (!mask[row])
                {
                    continue;
                }

                for (int o = 0; o < outputs; o++)
                {
                    for (int i = 0; i < inputs; i++)
                    {
                        gradient[o, i] += (double)dy[row * outputs + o] * x[row * inputs + i];
                    }
                }
            }

            double difference = 0, norm = 0;
            for (int a = 0; a < outputRank; a++)
            {
                for (int b = 0; b < inputRank; b++)
                {
                    double expected = 0;
                    for (int o = 0; o < outputs; o++)
                    {
                        for (int i = 0; i < inputs; i++)
                        {
                            expected += outputProjection[a * outputs + o] * gradient[o, i] * inputProjection[b * inputs + i];
                        }
                    }

                    double actual = projected[e * stride + 2 + a * inputRank + b];
                    difference += (actual - expected) * (actual - expected);
                    norm += expected * expected;
                }
            }

            Assert.True(Math.Sqrt(difference / norm) < 1e-5, $"example {e}: relative error {Math.Sqrt(difference / norm):E2}");
        }
    }

    [Fact]
    public void of_a_padded_gpt_batch_equal_each_example_backpropagated_alone()
    {
        var model = new GptModel<float>(new GptOptions(ContextLength: 8, Layers: 1, Heads: 2, Width: 16, Seed: 5), ComputeBackends.Managed);
        string[] texts = ["hello world, long enough", "abc", "x", "market data"];
        var source = new TextGradientSource<float>(model, texts);
        var projections = ProjectionSet.Create(model, new ProjectionOptions { Rank = 4, Seed = 9 });
        Assert.Equal(ProjectionSet.NamedLinearLayers(model).Count, projections.Layers.Count);
        var batched = Problems.Gradients(source, projections, batchSize: 4);

        var layers = ProjectionSet.NamedLinearLayers(model).ToDictionary(l => l.Name, l => l.Layer);
        for (int e = 0; e < texts.Length; e++)
        {
            model.ZeroGradients();
            source.ForwardBackward([e]);
            for (int l = 0; l < projections.Layers.Count; l++)
            {
                var projection = projections.Layers[l];
                var gradient = layers[projection.Name].Weight.Gradient; // the full per-example gradient, out x in
                double difference = 0, norm = 0;
                for (int a = 0; a < projection.OutputRank; a++)
                {
                    for (int b = 0; b < projection.InputRank; b++)
                    {
                        double expected = 0;
                        for (int o = 0; o < projection.OutputWidth; o++)
                        {
                            double inner = 0;
                            for (int i = 0; i < projection.InputWidth; i++)
                            {
                                inner += (double)gradient[o * projection.InputWidth + i] * projection.InputProjection[b * projection.InputWidth + i];
                            }

                            expected += projection.OutputProjection[a * projection.OutputWidth + o] * inner;
                        }

                        double actual = batched.Row(e)[projections.Offset(l) + a * projection.InputRank + b];
                        difference += (actual - expected) * (actual - expected);
                        norm += expected * expected;
                    }
                }

                if (e == 2)
                {
                    // A one-byte text has no target: every token is padding and the gradient is zero.
                    Assert.Equal(0, norm);
                    Assert.Equal(0, difference);
                    continue;
                }

                Assert.True(Math.Sqrt(difference / norm) < 1e-4, $"example {e}, layer {projection.Name}: relative error {Math.Sqrt(difference / norm):E2}");
            }
        }
    }
}
