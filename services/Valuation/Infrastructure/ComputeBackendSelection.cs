using DataMarket.Compute;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// Chooses the compute backend once, at start-up, from <c>Compute:Backend</c> (or <c>DATAMARKET_BACKEND</c>) and
/// says which one it took and why, so an operator can tell a slow worker on the managed fallback at a glance.
/// </summary>
public sealed class ComputeBackendSelection(ILogger<ComputeBackendSelection> logger, IConfiguration? configuration = null) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var configured = configuration?["Compute:Backend"];
        var selection = ComputeBackends.Initialize(
            configured is null ? null : ComputeBackends.Parse(configured),
            message => logger.LogInformation("{Message}", message));
        logger.LogInformation("Compute backend: {Backend} ({Reason})", selection.Backend.Name, selection.Reason);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
