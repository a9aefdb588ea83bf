using DataMarket.Compute;
using DataMarket.Learning.Optimizers;

namespace DataMarket.Learning.Tests;

public class optimizers_follow_their_published_update_rules
{
    private static (Parameter<float> Parameter, float[] Initial, float[][] Gradients) Setup()
    {
        // 37 elements: not a multiple of any vector width, so the scalar tail is exercised too.
        var parameter = new Parameter<float>("w", 37);
        var random = new SeededRandom(1);
        random.FillNormal(parameter.Value, 0f, 1f);
        var gradients = Enumerable.Range(0, 3).Select(_ =>
        {
            var g = new float[37];
            random.FillNormal(g, 0f, 1f);
            return g;
        }).ToArray();
        return (parameter, parameter.Value.ToArray(), gradients);
    }

    [Fact]
    public void adamw_matches_the_decoupled_weight_decay_rule()
    {
        var (parameter, initial, gradients) = Setup();
        const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, decay = 0.1;
        var optimizer = new AdamW<float>([parameter], lr, beta1, beta2, epsilon, decay);
        var w = initial.Select(x => (double)x).ToArray();
        var m = new double[37];
        var v = new double[37];
        for (int t = 1; t <= 3; t++)
        {
            gradients[t - 1].CopyTo(parameter.Gradient, 0);
            optimizer.Step();
            for (int j = 0; j < 37; j++)
            {
                double g = gradients[t - 1][j];
                w[j] -= lr * decay * w[j];
                m[j] = beta1 * m[j] + (1 - beta1) * g;
                v[j] = beta2 * v[j] + (1 - beta2) * g * g;
                double mHat = m[j] / (1 - Math.Pow(beta1, t)), vHat = v[j] / (1 - Math.Pow(beta2, t));
                w[j] -= lr * mHat / (Math.Sqrt(vHat) + epsilon);
            }
        }
        for (int j = 0; j < 37; j++)
        {
            Assert.Equal(w[j], parameter.Value[j], 1e-5);
        }
    }

    [Fact]
    public void sgd_momentum_matches_the_heavy_ball_rule()
    {
        var (parameter, initial, gradients) = Setup();
        var optimizer = new Sgd<float>([parameter], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01);
        var w = initial.Select(x => (double)x).ToArray();
        var velocity = new double[37];
        foreach (var gradient in gradients)
        {
            gradient.CopyTo(parameter.Gradient, 0);
            optimizer.Step();
            for (int j = 0; j < 37; j++)
            {
                velocity[j] = 0.9 * velocity[j] + gradient[j] + 0.01 * w[j];
                w[j] -= 0.1 * velocity[j];
            }
        }
        for (int j = 0; j < 37; j++)
        {
            Assert.Equal(w[j], parameter.Value[j], 1e-5);
        }
    }
}
