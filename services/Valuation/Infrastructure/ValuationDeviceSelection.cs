using DataMarket.Valuation.Gpu;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>
/// Chooses the valuation device once, at start-up, from <c>Valuation:Device</c> (<c>Valuation__Device</c> in the
/// environment: auto, cpu, gpu or gpu-emulated; default auto) and logs which one it took and why. A missing GPU means
/// the CPU with one log line, never a failed start; a value that is not a device name does fail the start, since the
/// operator's intent is unknown.
/// </summary>
public sealed class ValuationDeviceSelection(ValuationDevice device, ILogger<ValuationDeviceSelection> logger) : IHostedService
{
    public const string ConfigurationKey = "Valuation:Device";

    /// <summary>Without configuration (hosts built by hand, as in tests) the device is auto.</summary>
    public static ValuationDevice Select(IConfiguration? configuration) =>
        ValuationDevice.Select(ValuationDevice.Parse(configuration?[ConfigurationKey]));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Valuation device: {Device} ({Reason})", device.Name, device.Reason);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
