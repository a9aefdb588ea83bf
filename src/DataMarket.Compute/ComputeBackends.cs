using DataMarket.Compute.Managed;
using DataMarket.Compute.OpenBlas;

namespace DataMarket.Compute;

/// <summary>
/// Which dense linear-algebra backend model training and LoGra use. <see cref="Auto"/> is the managed backend: its
/// bits depend only on the shapes and the CPU's vector width, because every product is split the same way whatever
/// the thread count, and a valuation's output must not change with anything else. OpenBLAS is faster at large sizes
/// and is used when asked for by name. GPUs are not a backend here: valuations choose their device with
/// <c>--device</c> or <c>Valuation__Device</c> (DataMarket.Valuation.Gpu.ValuationDevice).
/// </summary>
public enum BackendKind
{
    Auto,
    Managed,
    OpenBlas,
}

/// <summary>The chosen backend and a sentence saying why, for logs and benchmark output.</summary>
public sealed record BackendSelection(ComputeBackend Backend, string Reason);

/// <summary>Chooses the compute backend once per process (configuration or DATAMARKET_BACKEND).</summary>
public static class ComputeBackends
{
    public const string EnvironmentVariable = "DATAMARKET_BACKEND";

    private static readonly Lock s_defaultLock = new();
    private static BackendSelection? s_default;

    /// <summary>The process-wide backend: the one passed to <see cref="Initialize"/>, else chosen on first use from DATAMARKET_BACKEND (default auto).</summary>
    public static BackendSelection Default
    {
        get
        {
            lock (s_defaultLock)
            {
                return s_default ??= Select(FromEnvironmentVariable());
            }
        }
    }

    /// <summary>
    /// Chooses the process-wide backend once, at startup: <paramref name="kind"/> from configuration when
    /// given, otherwise DATAMARKET_BACKEND, otherwise auto. Later calls return the first choice unchanged
    /// (the backend never changes under running models) and say so through <paramref name="log"/>.
    /// </summary>
    public static BackendSelection Initialize(BackendKind? kind = null, Action<string>? log = null)
    {
        lock (s_defaultLock)
        {
            if (s_default is not null)
            {
                log?.Invoke($"Compute backend already chosen: {s_default.Backend.Name} ({s_default.Reason})");
                return s_default;
            }
            s_default = Select(kind ?? FromEnvironmentVariable(), log);
            return s_default;
        }
    }

    public static ManagedBackend Managed { get; } = new();

    /// <summary>Parses "managed", "openblas", "auto" (case-insensitive; empty means auto).</summary>
    public static BackendKind Parse(string? value) => (value ?? "").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => BackendKind.Auto,
        "managed" => BackendKind.Managed,
        "openblas" => BackendKind.OpenBlas,
        "cuda" => throw new ArgumentException(
            "DATAMARKET_BACKEND=cuda is gone: DATAMARKET_BACKEND picks the CPU linear-algebra backend (managed, openblas or auto); run valuations on a GPU with --device gpu or Valuation__Device=gpu."),
        _ => throw new ArgumentException($"Unknown compute backend '{value}'; expected managed, openblas or auto."),
    };

    public static BackendKind FromEnvironmentVariable() => Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>
    /// Creates the backend for <paramref name="kind"/>. An explicit request for OpenBLAS fails when the
    /// library is missing.
    /// </summary>
    public static BackendSelection Select(BackendKind kind, Action<string>? log = null)
    {
        BackendSelection selection;
        switch (kind)
        {
            case BackendKind.Managed:
                selection = new(Managed, $"managed backend requested ({Managed.KernelName} kernel)");
                break;
            case BackendKind.OpenBlas:
                var openBlas = OpenBlasBackend.TryCreate(out string detail)
                    ?? throw new InvalidOperationException($"The openblas backend was requested but cannot be used: {detail}");
                selection = new(openBlas, $"openblas backend requested: {detail}");
                break;
            default:
                selection = new(Managed, $"managed backend by default ({Managed.KernelName} kernel; set {EnvironmentVariable}=openblas for OpenBLAS)");
                break;
        }
        log?.Invoke($"Compute backend: {selection.Backend.Name} — {selection.Reason}");
        return selection;
    }

    /// <summary>Every backend that can run on this machine, managed first.</summary>
    public static IReadOnlyList<ComputeBackend> Available()
    {
        var list = new List<ComputeBackend> { Managed };
        if (OpenBlasBackend.TryCreate(out _) is { } openBlas)
        {
            list.Add(openBlas);
        }
        return list;
    }
}
