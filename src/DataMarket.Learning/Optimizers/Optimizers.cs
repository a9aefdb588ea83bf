using System.Numerics;
using System.Numerics.Tensors;

namespace DataMarket.Learning.Optimizers;

/// <summary>Updates parameters from their accumulated gradients.</summary>
public abstract class Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected Optimizer(IReadOnlyList<Parameter<T>> parameters)
    {
        Parameters = parameters;
    }

    public IReadOnlyList<Parameter<T>> Parameters { get; }

    public double LearningRate { get; set; }

    public abstract void Step();

    public void ZeroGradients()
    {
        foreach (var parameter in Parameters)
        {
            parameter.ZeroGradient();
        }
    }
}

/// <summary>SGD with (heavy-ball) momentum as in PyTorch: v = μ v + g (+ λ w); w -= lr v.</summary>
public sealed class Sgd<T> : Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T[][] _velocity;

    public Sgd(IReadOnlyList<Parameter<T>> parameters, double learningRate, double momentum = 0, double weightDecay = 0) : base(parameters)
    {
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
        _velocity = parameters.Select(p => new T[p.Value.Length]).ToArray();
    }

    public double Momentum { get; }

    public double WeightDecay { get; }

    public override void Step()
    {
        T rate = T.CreateTruncating(LearningRate), momentum = T.CreateTruncating(Momentum), decay = T.CreateTruncating(WeightDecay);
        for (int i = 0; i < Parameters.Count; i++)
        {
            var parameter = Parameters[i];
            var velocity = _velocity[i];
            var gradient = parameter.Gradient;
            if (WeightDecay != 0)
            {
                TensorPrimitives.MultiplyAdd(parameter.Value, decay, gradient, gradient);
            }
            TensorPrimitives.MultiplyAdd(velocity, momentum, gradient, velocity);
            TensorPrimitives.MultiplyAdd(velocity, -rate, parameter.Value, parameter.Value);
        }
    }
}

/// <summary>AdamW (Loshchilov and Hutter): Adam with weight decay applied to the weights, not the gradient.</summary>
public sealed class AdamW<T> : Optimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T[][] _firstMoment;
    private readonly T[][] _secondMoment;
    private int _step;

    public AdamW(IReadOnlyList<Parameter<T>> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, double weightDecay = 0.01) : base(parameters)
    {
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        _firstMoment = parameters.Select(p => new T[p.Value.Length]).ToArray();
        _secondMoment = parameters.Select(p => new T[p.Value.Length]).ToArray();
    }

    public double Beta1 { get; }

    public double Beta2 { get; }

    public double Epsilon { get; }

    public double WeightDecay { get; }

    public override void Step()
    {
        _step++;
        T beta1 = T.CreateTruncating(Beta1), beta2 = T.CreateTruncating(Beta2);
        T oneMinusBeta1 = T.One - beta1, oneMinusBeta2 = T.One - beta2, epsilon = T.CreateTruncating(Epsilon);
        T stepSize = T.CreateTruncating(LearningRate / (1 - Math.Pow(Beta1, _step)));
        T secondCorrection = T.CreateTruncating(1 / (1 - Math.Pow(Beta2, _step)));
        T decay = T.One - T.CreateTruncating(LearningRate * WeightDecay);
        for (int i = 0; i < Parameters.Count; i++)
        {
            var w = Parameters[i].Value;
            var g = Parameters[i].Gradient;
            var m = _firstMoment[i];
            var v = _secondMoment[i];
            for (int j = 0; j < w.Length; j++)
            {
                m[j] = beta1 * m[j] + oneMinusBeta1 * g[j];
                v[j] = beta2 * v[j] + oneMinusBeta2 * g[j] * g[j];
                w[j] = w[j] * decay - stepSize * m[j] / (T.Sqrt(v[j] * secondCorrection) + epsilon);
            }
        }
    }
}
