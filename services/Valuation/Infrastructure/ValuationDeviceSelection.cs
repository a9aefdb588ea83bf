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

    /// <summary>
    /// Training rows the GPU holds at once (<c>Valuation__GpuTrainingRowsPerPass</c>); larger training data streams
    /// through in blocks of this many rows. Default 0: sized from the GPU's memory. Values do not depend on it.
    /// </summary>
    public const string TrainingRowsKey = "Valuation:GpuTrainingRowsPerPass";

    /// <summary>Without configuration (hosts built by hand, as in tests) the device is auto.</summary>
    public static ValuationDevice Select(IConfiguration? configuration)
    {
        var device = ValuationDevice.Select(ValuationDevice.Parse(configuration?[ConfigurationKey]));
        if (device.Kind != DeviceKind.Cpu && configuration?[TrainingRowsKey] is { Length: > 0 } rows)
        {
            device.TrainingRowsPerPass = int.TryParse(rows, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
                ? value
                : throw new InvalidOperationException($"{TrainingRowsKey} must be a whole number of rows (0 = automatic), got '{rows}'");
        }

        return device;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Valuation device: {Device} ({Reason})", device.Name, device.Reason);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
