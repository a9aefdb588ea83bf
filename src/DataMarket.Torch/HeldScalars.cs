using TorchSharp;

namespace DataMarket.Torch;

/// <summary>
/// Scalars that live as long as the process. TorchSharp turns a number passed where it takes a <see cref="Scalar"/>
/// (and the alpha of 1 behind <c>Tensor.add(Tensor)</c>, <c>add_(Tensor)</c> and the <c>+</c> operator) into a
/// temporary whose last reference ends when its handle is read. A garbage collection during the native call can then
/// finalize it while libtorch still reads it: seen once in a loaded test run ("toFloat: Expected false to be true").
/// Loops that run per batch or per chunk therefore pass one of these, or a Scalar they dispose after the call.
/// </summary>
internal static class HeldScalars
{
    /// <summary>The alpha of a plain addition (an int, as TorchSharp's own overloads pass it).</summary>
    public static readonly Scalar One = 1.ToScalar();
}
