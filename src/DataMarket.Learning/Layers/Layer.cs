using System.Numerics;
using DataMarket.Compute;

namespace DataMarket.Learning.Layers;

/// <summary>
/// A differentiable map on a row-major activation matrix (rows = batch x sequence). Forward caches what
/// Backward needs; Backward takes dLoss/dOutput, adds parameter gradients into <see cref="Parameter{T}.Gradient"/>
/// and returns dLoss/dInput. Arrays returned by Forward/Backward are fresh and owned by the caller.
/// </summary>
public abstract class Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected Layer(ComputeBackend? backend)
    {
        Backend = backend ?? ComputeBackends.Default.Backend;
    }

    public ComputeBackend Backend { get; }

    public abstract T[] Forward(T[] input, BatchShape shape);

    public abstract T[] Backward(T[] outputGradient);

    /// <summary>Parameters of this layer and its children, with names relative to this layer.</summary>
    public virtual IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters() => [];

    /// <summary>Child layers, so that hooks can find every <see cref="Linear{T}"/> in a model.</summary>
    public virtual IEnumerable<Layer<T>> Children => [];

    public IEnumerable<Layer<T>> DescendantsAndSelf()
    {
        yield return this;
        foreach (var child in Children)
        {
            foreach (var layer in child.DescendantsAndSelf())
            {
                yield return layer;
            }
        }
    }

    protected static IEnumerable<(string, Parameter<T>)> Prefix(string prefix, Layer<T> child) =>
        child.NamedParameters().Select(p => ($"{prefix}.{p.Name}", p.Parameter));

    protected T[] Cached(T[]? value) => value ?? throw new InvalidOperationException($"{GetType().Name}.Backward called before Forward.");
}
