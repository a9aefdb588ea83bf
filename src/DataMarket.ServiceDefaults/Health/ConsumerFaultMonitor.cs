using MassTransit;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace DataMarket.ServiceDefaults.Health;

/// <summary>
/// Remembers messages whose consumer gave up (after the endpoint's retries) so that <c>/health</c> says so: a status
/// update that lands in the error queue is lost to the buyer until someone acts, and a service that drops them must
/// not report Healthy. Faults older than <see cref="Window"/> age out, so a recovered service turns healthy again.
/// </summary>
public sealed class ConsumerFaultMonitor(TimeProvider? clock = null) : IConsumeObserver, IHealthCheck
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private readonly Queue<(DateTimeOffset At, string Message)> _recent = new();
    private long _total;

    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(15);

    public long TotalFaults => Interlocked.Read(ref _total);

    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class
    {
        Interlocked.Increment(ref _total);
        lock (_gate)
        {
            _recent.Enqueue((_clock.GetUtcNow(), $"{typeof(T).Name}: {exception.GetType().Name}: {exception.Message}"));
            while (_recent.Count > 20)
            {
                _recent.Dequeue();
            }
        }

        return Task.CompletedTask;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var cutoff = _clock.GetUtcNow() - Window;
            while (_recent.Count > 0 && _recent.Peek().At < cutoff)
            {
                _recent.Dequeue();
            }

            if (_recent.Count == 0)
            {
                return Task.FromResult(HealthCheckResult.Healthy($"no consumer faults in the last {Window.TotalMinutes:F0} minutes"));
            }

            var last = _recent.Last();
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"{_recent.Count} message(s) failed after all retries in the last {Window.TotalMinutes:F0} minutes (moved to the error queue); last: {last.Message}"));
        }
    }
}
