using System.Diagnostics;
using System.Diagnostics.Metrics;
using DataMarket.Catalog.Model;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Infrastructure;

/// <summary>
/// <c>datamarket.valuations{status}</c>: how many valuations are in each status, read from the catalog's database
/// when metrics are collected (a scrape or an export), at most once every few seconds.
/// </summary>
public sealed class ValuationStatusGauge(IServiceScopeFactory scopes, IMeterFactory meters, ILogger<ValuationStatusGauge> logger) : IHostedService
{
    private static readonly TimeSpan s_maxAge = TimeSpan.FromSeconds(5);
    private readonly Lock _gate = new();
    private Measurement<long>[] _last = [];
    private long _readAt = long.MinValue;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        meters.Create("DataMarket.Catalog").CreateObservableGauge("datamarket.valuations", Observe, "{valuation}", "Valuations by status");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private Measurement<long>[] Observe()
    {
        lock (_gate)
        {
            if (_readAt != long.MinValue && Stopwatch.GetElapsedTime(_readAt) < s_maxAge)
            {
                return _last;
            }

            try
            {
                using var scope = scopes.CreateScope();
                var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
                var counts = db.Valuations.GroupBy(v => v.Status).Select(g => new { Status = g.Key, Count = g.LongCount() }).ToDictionary(c => c.Status, c => c.Count);
                _last = Enum.GetValues<ValuationStatus>()
                    .Select(status => new Measurement<long>(counts.GetValueOrDefault(status), new KeyValuePair<string, object?>("status", status.ToString())))
                    .ToArray();
            }
            catch (Exception exception)
            {
                // A gauge that cannot be read is left out of this collection rather than reported as zero.
                logger.LogWarning("Could not count valuations by status: {Message}", exception.Message);
                _last = [];
            }

            _readAt = Stopwatch.GetTimestamp();
            return _last;
        }
    }
}
