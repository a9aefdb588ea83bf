using System.Numerics;
using DataMarket.Learning.Layers;

namespace DataMarket.Learning.Models;

/// <summary>A model: named parameters (the checkpoint keys) and the Linear layers that valuation hooks into.</summary>
public abstract class Model<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private IReadOnlyList<Parameter<T>>? _parameters;

    protected abstract IEnumerable<(string Name, Parameter<T> Parameter)> EnumerateParameters();

    protected abstract IEnumerable<Layer<T>> TopLevelLayers();

    /// <summary>Parameters in a fixed order, each named by its path (e.g. "layers.0.weight").</summary>
    public IReadOnlyList<Parameter<T>> Parameters => _parameters ??= EnumerateParameters().Select(p =>
    {
        p.Parameter.Name = p.Name;
        return p.Parameter;
    }).ToList();

    public long ParameterCount => Parameters.Sum(p => (long)p.Value.Length);

    /// <summary>Every Linear layer in forward order; set <see cref="Linear{T}.CaptureActivations"/> to collect x and dy.</summary>
    public IReadOnlyList<Linear<T>> LinearLayers => TopLevelLayers().SelectMany(l => l.DescendantsAndSelf()).OfType<Linear<T>>().ToList();

    public void ZeroGradients()
    {
        foreach (var parameter in Parameters)
        {
            parameter.ZeroGradient();
        }
    }
}
