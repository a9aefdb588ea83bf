using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace DataMarket.Valuation.Gpu;

/// <summary>Where exact KNN valuations rank training points: <c>auto</c>, <c>cpu</c>, <c>gpu</c> or <c>gpu-emulated</c>.</summary>
public enum DeviceKind
{
    /// <summary>The first NVIDIA GPU when one is present, else the CPU.</summary>
    Auto,

    /// <summary>The managed CPU path (SIMD distances, radix sort).</summary>
    Cpu,

    /// <summary>ILGPU kernels on the first NVIDIA GPU (CUDA driver needed, no CUDA toolkit).</summary>
    Gpu,

    /// <summary>The same ILGPU kernels on ILGPU's CPU accelerator: slow, for tests and for checking the kernels without a GPU.</summary>
    GpuEmulated,
}

/// <summary>
/// The device a valuation runs its distances and per-test-point orderings on, chosen once and passed down. Values do
/// not depend on the device: every path computes the same float32 distances (one summation order, see
/// <see cref="Shapley.DistanceRanking.SquaredDistance"/>) and the same (distance, index) order, and the recursions
/// and the fixed-block moments run on the CPU either way. Owns the ILGPU context and accelerator; dispose it last.
/// </summary>
public sealed class ValuationDevice : IDisposable
{
    private readonly Context? _context;
    private readonly Lock _kernelLock = new();
    private GpuKernels? _kernels;
    private GpuRecursionKernels? _recursionKernels;

    private ValuationDevice(DeviceKind kind, string name, string reason, Context? context = null, Accelerator? accelerator = null)
    {
        Kind = kind;
        Name = name;
        Reason = reason;
        _context = context;
        Accelerator = accelerator;
    }

    /// <summary>The CPU path; owns nothing.</summary>
    public static ValuationDevice Cpu { get; } = new(DeviceKind.Cpu, "cpu", "CPU requested");

    /// <summary>What runs: <see cref="DeviceKind.Cpu"/>, <see cref="DeviceKind.Gpu"/> or <see cref="DeviceKind.GpuEmulated"/>, never Auto.</summary>
    public DeviceKind Kind { get; }

    /// <summary>A short name for logs, for example "gpu (NVIDIA H100 80GB HBM3)".</summary>
    public string Name { get; }

    /// <summary>Why this device was chosen, for one log line.</summary>
    public string Reason { get; }

    internal Accelerator? Accelerator { get; }

    /// <summary>Parses "auto", "cpu", "gpu", "gpu-emulated" (case-insensitive; empty means auto).</summary>
    public static DeviceKind Parse(string? value) => (value ?? "").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => DeviceKind.Auto,
        "cpu" => DeviceKind.Cpu,
        "gpu" => DeviceKind.Gpu,
        "gpu-emulated" => DeviceKind.GpuEmulated,
        _ => throw new ArgumentException($"unknown valuation device '{value}'; expected auto, cpu, gpu or gpu-emulated"),
    };

    /// <summary>
    /// Opens the requested device. <see cref="DeviceKind.Auto"/> and <see cref="DeviceKind.Gpu"/> take the first
    /// NVIDIA GPU; where there is none (no driver, no device, or ILGPU cannot open it) they fall back to the CPU and
    /// <see cref="Reason"/> says why in one sentence. Never throws for a missing GPU.
    /// </summary>
    public static ValuationDevice Select(DeviceKind requested)
    {
        switch (requested)
        {
            case DeviceKind.Cpu:
                return Cpu;
            case DeviceKind.GpuEmulated:
                var emulated = Context.Create(builder => builder.CPU().EnableAlgorithms());
                return new ValuationDevice(
                    DeviceKind.GpuEmulated,
                    "gpu-emulated (ILGPU CPU accelerator)",
                    "gpu-emulated requested: the GPU kernels run on ILGPU's CPU accelerator",
                    emulated,
                    emulated.CreateCPUAccelerator(0));
            default:
                var asked = requested == DeviceKind.Gpu ? "gpu requested" : "auto";
                Context? context = null;
                try
                {
                    context = Context.Create(builder => builder.Cuda().EnableAlgorithms());
                    var devices = context.GetCudaDevices();
                    if (devices.Count == 0)
                    {
                        context.Dispose();
                        return Fallback($"{asked}, but no NVIDIA GPU was found (no CUDA driver or no device); using the CPU");
                    }

                    var accelerator = context.CreateCudaAccelerator(0);
                    return new ValuationDevice(DeviceKind.Gpu, $"gpu ({accelerator.Name})", $"{asked}: {accelerator.Name}, {accelerator.MemorySize / (1 << 20)} MiB", context, accelerator);
                }
                catch (Exception exception) when (exception is not OutOfMemoryException)
                {
                    context?.Dispose();
                    return Fallback($"{asked}, but the NVIDIA GPU could not be opened ({exception.GetType().Name}: {exception.Message}); using the CPU");
                }
        }
    }

    private static ValuationDevice Fallback(string reason) => new(DeviceKind.Cpu, "cpu", reason);

    /// <summary>
    /// The ranking of <paramref name="features"/> (row-major, <paramref name="featureCount"/> per row) on this device
    /// for up to <paramref name="maxBlock"/> test points at a time; null on the CPU, where the managed ranking runs.
    /// </summary>
    internal GpuRanking? CreateRanking(float[] features, int featureCount, int maxBlock)
    {
        if (Accelerator is null)
        {
            return null;
        }

        return new GpuRanking(Kernels, features, featureCount, maxBlock, RowsPerPass(featureCount, features.Length / featureCount));
    }

    /// <summary>
    /// Training rows the distance kernel holds on the device at once; a larger training matrix streams through in
    /// blocks of this many rows for every batch of test points. 0 (the default) sizes it from the device's memory
    /// (the whole matrix when it takes at most a quarter). Values do not depend on it.
    /// </summary>
    public int TrainingRowsPerPass
    {
        get;
        set => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "training rows per pass must be 0 (automatic) or positive");
    }

    /// <summary>
    /// Test points the GPU valuation kernels take per launch, a whole number of <see cref="Statistics.TestPointBlocks.Size"/>
    /// blocks; 0 (the default) sizes it from the device's memory (at most 64). Values do not depend on it.
    /// </summary>
    public int TestPointsPerLaunch
    {
        get;
        set => field = value >= 0 && value % Statistics.TestPointBlocks.Size == 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"test points per launch must be 0 (automatic) or a multiple of {Statistics.TestPointBlocks.Size}");
    }

    internal int RowsPerPass(int featureCount, int count) =>
        TrainingRowsPerPass > 0 ? TrainingRowsPerPass : GpuTrainingRows.DefaultRowsPerPass(Accelerator!, featureCount, count);

    /// <summary>Kernels compile once per device, on first use (about a quarter of a second each on the CPU accelerator).</summary>
    internal GpuKernels Kernels
    {
        get
        {
            if (Accelerator is null)
            {
                throw new InvalidOperationException("the CPU device has no GPU kernels");
            }

            lock (_kernelLock)
            {
                return _kernels ??= new GpuKernels(Accelerator);
            }
        }
    }

    /// <summary>The recursion and moment kernels of <see cref="GpuKnnValuation"/>, compiled on first use.</summary>
    internal GpuRecursionKernels RecursionKernels
    {
        get
        {
            var accelerator = Kernels.Accelerator;
            lock (_kernelLock)
            {
                return _recursionKernels ??= new GpuRecursionKernels(accelerator);
            }
        }
    }

    public override string ToString() => Name;

    public void Dispose()
    {
        if (ReferenceEquals(this, Cpu))
        {
            return;
        }

        Accelerator?.Dispose();
        _context?.Dispose();
    }
}
