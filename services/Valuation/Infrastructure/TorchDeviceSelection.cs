using DataMarket.Torch;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// Loads libtorch and chooses the torch device once, at start-up, from <c>Torch:Device</c> (cpu by default), and logs
/// the choice. A worker that cannot load torch stops here with the loader's reason instead of failing its first
/// LoGra valuation.
/// </summary>
public sealed class TorchDeviceSelection(ILogger<TorchDeviceSelection> logger, IConfiguration? configuration = null) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            TorchRuntime.Initialize(configuration?[TorchRuntime.DeviceKey], message => logger.LogInformation("Torch: {Message}", message));
        }
        catch (TorchUnavailableException exception)
        {
            logger.LogCritical("Torch cannot start: {Reason}", exception.Message);
            throw;
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
