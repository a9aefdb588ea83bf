using DataMarket.Compute.Managed;
using DataMarket.Compute.OpenBlas;

namespace DataMarket.Compute.Tests;

/// <summary>
/// The backends under test. OpenBLAS is expected here and in CI, so a missing library fails its tests
/// (xUnit v2 has no dynamic skip, and passing silently would hide a broken install). Set
/// DATAMARKET_REQUIRE_OPENBLAS=0 to opt out on a machine without it; =1 (or unset) requires it.
/// </summary>
public static class Backends
{
    public static ComputeBackend? Get(string name)
    {
        switch (name)
        {
            case "openblas":
                var backend = OpenBlasBackend.TryCreate(out string detail);
                if (backend is null && Environment.GetEnvironmentVariable("DATAMARKET_REQUIRE_OPENBLAS") != "0")
                {
                    Assert.Fail($"OpenBLAS did not load ({detail}). Install libopenblas0-pthread, or set DATAMARKET_REQUIRE_OPENBLAS=0 to opt out.");
                }
                return backend;
            case "managed":
                return ComputeBackends.Managed;
            default:
                // Kernels the CPU lacks still run (the runtime emulates wide vectors), so every kernel is checked everywhere.
                var kernel = Enum.Parse<SgemmKernel>(name["managed-".Length..]);
                return new ManagedBackend(kernel, Environment.ProcessorCount);
        }
    }

    public static TheoryData<string> All => new("managed", "openblas");

    /// <summary>Every managed kernel (scalar, Vector256, Vector512) plus OpenBLAS.</summary>
    public static TheoryData<string> AllWithKernels => new("managed-Scalar", "managed-Vector256", "managed-Vector512", "openblas");
}
