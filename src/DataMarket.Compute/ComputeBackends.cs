using DataMarket.Compute.Managed;
using DataMarket.Compute.OpenBlas;

namespace DataMarket.Compute;

/// <summary>Which backend to use; <see cref="Auto"/> prefers OpenBLAS and falls back to managed.</summary>
public enum BackendKind
{
    Auto,
    Managed,
    OpenBlas,
    Cuda,
}

/// <summary>The chosen backend and a sentence saying why, for logs and benchmark output.</summary>
public sealed record BackendSelection(ComputeBackend Backend, string Reason);

/// <summary>Chooses the compute backend once per process (configuration or DATAMARKET_BACKEND).</summary>
public static class ComputeBackends
{
    public const string EnvironmentVariable = "DATAMARKET_BACKEND";

    private static readonly Lazy<BackendSelection> s_default = new(() => Select(FromEnvironmentVariable()));

    /// <summary>The process-wide backend, chosen on first use from DATAMARKET_BACKEND (default auto).</summary>
    public static BackendSelection Default => s_default.Value;

    public static ManagedBackend Managed { get; } = new();

    /// <summary>Parses "managed", "openblas", "cuda", "auto" (case-insensitive; empty means auto).</summary>
    public static BackendKind Parse(string? value) => (value ?? "").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => BackendKind.Auto,
        "managed" => BackendKind.Managed,
        "openblas" => BackendKind.OpenBlas,
        "cuda" => BackendKind.Cuda,
        _ => throw new ArgumentException($"Unknown compute backend '{value}'; expected managed, openblas, cuda or auto."),
    };

    public static BackendKind FromEnvironmentVariable() => Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>
    /// Creates the backend for <paramref name="kind"/>. An explicit request for OpenBLAS fails when the
    /// library is missing; CUDA is not implemented yet and falls back to auto selection, saying so in
    /// <see cref="BackendSelection.Reason"/> and through <paramref name="log"/>.
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
            case BackendKind.Cuda:
                var fallback = Select(BackendKind.Auto);
                selection = fallback with { Reason = $"cuda backend is not implemented yet; falling back to {fallback.Backend.Name} ({fallback.Reason})" };
                break;
            default:
                var automatic = OpenBlasBackend.TryCreate(out string autoDetail);
                selection = automatic is not null
                    ? new(automatic, $"openblas found: {autoDetail}")
                    : new(Managed, $"{autoDetail} Using managed backend ({Managed.KernelName} kernel).");
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
