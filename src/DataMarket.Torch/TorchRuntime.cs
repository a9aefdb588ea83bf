using System.Runtime.InteropServices;
using TorchSharp;

namespace DataMarket.Torch;

/// <summary>
/// Loads libtorch once per process, picks the torch device once from configuration, and fixes the settings that the
/// reproducibility promise needs (a fixed intra-op thread count). Everything that runs a
/// model asks this class for the device instead of naming one.
/// </summary>
public static class TorchRuntime
{
    /// <summary>Configuration key (and, upper-cased with "__", environment variable) that names the torch device.</summary>
    public const string DeviceKey = "Torch:Device";

    /// <summary>Environment variable the CLI reads for the device: "cpu" (default), "cuda" or "cuda:N".</summary>
    public const string DeviceEnvironmentVariable = "DATAMARKET_TORCH_DEVICE";

    /// <summary>
    /// Intra-op threads libtorch uses. Fixed, so a float reduction inside one op splits the same way on every machine
    /// (libtorch's parallel reductions depend on the thread count otherwise).
    /// </summary>
    public const int IntraOpThreads = 1;

    private static readonly Lock Gate = new();
    private static torch.Device? _device;

    /// <summary>The device chosen at start-up (CPU until <see cref="Initialize"/> chose otherwise).</summary>
    public static torch.Device Device => _device ?? Initialize(null);

    /// <summary>What <see cref="Initialize"/> chose, in words, for the start-up log.</summary>
    public static string Description { get; private set; } = "not loaded";

    /// <summary>
    /// Loads libtorch and chooses the device named by <paramref name="deviceName"/> ("cpu", "cuda", "cuda:1";
    /// null or empty means cpu). Only the first call chooses; later calls must name the same device or nothing.
    /// Throws <see cref="TorchUnavailableException"/> naming the cause when libtorch cannot load.
    /// </summary>
    public static torch.Device Initialize(string? deviceName, Action<string>? log = null)
    {
        lock (Gate)
        {
            var wanted = string.IsNullOrWhiteSpace(deviceName) ? "cpu" : deviceName.Trim().ToLowerInvariant();
            if (_device is not null)
            {
                if (!string.IsNullOrWhiteSpace(deviceName) && !SameDevice(_device, wanted))
                {
                    throw new InvalidOperationException($"The torch device was already chosen as '{_device}'; it cannot change to '{wanted}' in the same process.");
                }

                return _device;
            }

            var (type, index) = ParseDevice(wanted);
            EnsureLoaded();
            if (type == DeviceType.CUDA && !torch.cuda.is_available())
            {
                throw new TorchUnavailableException($"{DeviceKey} = '{wanted}' but CUDA is not available: this build carries libtorch for CPU (build with -p:TorchBackend=cuda where the feed serves TorchSharp-cuda-linux) or no GPU driver is present.");
            }

            var device = new torch.Device(type, index);
            // TorchSharp 0.107 marks torch.use_deterministic_algorithms "not implemented"; on CPU the fixed intra-op
            // thread count is what keeps reductions in one order, and our own reductions run over fixed blocks.
            torch.set_num_threads(IntraOpThreads);
            _device = device;
            Description = $"torch device {device} (libtorch {torch.__version__}, {IntraOpThreads} intra-op thread)";
            log?.Invoke(Description);
            return device;
        }
    }

    /// <summary>
    /// Sets the intra-op thread count on the calling thread. Under OpenMP the count is a per-thread setting: a thread
    /// that never set it (a thread-pool thread running a shard) runs ops on every core with other reduction splits, and
    /// LoGra scores then differed in their last bits from the same block scored on the thread that loaded torch.
    /// </summary>
    public static void PinThreads() => torch.set_num_threads(IntraOpThreads);

    /// <summary>Reads the device from <see cref="DeviceEnvironmentVariable"/> (the CLI's configuration).</summary>
    public static torch.Device InitializeFromEnvironment(Action<string>? log = null) =>
        Initialize(Environment.GetEnvironmentVariable(DeviceEnvironmentVariable), log);

    /// <summary>
    /// Makes libtorch load, or throws <see cref="TorchUnavailableException"/> with the loader's own reason. TorchSharp's
    /// message on a failed load names a missing package even when the real cause is a native dependency.
    /// </summary>
    public static void EnsureLoaded()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException)
        {
            throw new TorchUnavailableException(DiagnoseLoadFailure(), e);
        }
    }

    private static string DiagnoseLoadFailure()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        };
        var library = candidates.FirstOrDefault(File.Exists);
        if (library is null)
        {
            return $"libtorch could not be loaded: libLibTorchSharp.so is not in {AppContext.BaseDirectory}. Reference DataMarket.Torch from a project built for linux-x64 (RuntimeIdentifier linux-x64) so the libtorch-cpu-linux-x64 natives are copied.";
        }

        try
        {
            NativeLibrary.Free(NativeLibrary.Load(library));
        }
        catch (DllNotFoundException e)
        {
            var reason = e.Message;
            var hint = reason.Contains("GLIBCXX_", StringComparison.Ordinal)
                ? " This system's libstdc++ is older than the one TorchSharp was built against (Debian 12 stops at GLIBCXX_3.4.30). The build step in build/TorchNative.targets marks that requirement weak after every build and publish; this copy was not patched, so rebuild or republish with this repository's Directory.Build.targets."
                : string.Empty;
            return $"libtorch could not be loaded: {library}: {reason}.{hint}";
        }

        return $"libtorch could not be loaded although {library} itself loads; one of the libtorch libraries beside it (libtorch_cpu.so, libc10.so) is missing or unloadable.";
    }

    private static bool SameDevice(torch.Device chosen, string wanted)
    {
        var (type, index) = ParseDevice(wanted);
        return type == chosen.type && (index == chosen.index || index < 0 || chosen.index < 0);
    }

    // Parsed here rather than by torch.device(), which initialises CUDA (and throws) just to read the name.
    private static (DeviceType Type, int Index) ParseDevice(string name)
    {
        var parts = name.Split(':');
        var type = parts[0] switch
        {
            "cpu" => DeviceType.CPU,
            "cuda" => DeviceType.CUDA,
            _ => throw new TorchUnavailableException($"{DeviceKey} = '{name}' is not a torch device (use cpu, cuda or cuda:N)."),
        };
        if (parts.Length == 1)
        {
            return (type, -1);
        }

        if (parts.Length == 2 && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
        {
            return (type, index);
        }

        throw new TorchUnavailableException($"{DeviceKey} = '{name}' is not a torch device (use cpu, cuda or cuda:N).");
    }
}

/// <summary>libtorch cannot be used in this process; the message names the cause.</summary>
public sealed class TorchUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
