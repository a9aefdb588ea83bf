using System.Data.Common;
using DataMarket.Catalog.Model;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace DataMarket.Services.Tests;

public sealed class catalog_consumers : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"datamarket-catalog-{Guid.NewGuid():N}");
    private readonly FlakyDatabase _flaky = new();
    private ServiceProvider _provider = null!;
    private ITestHarness _harness = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Catalog:Database"] = "Sqlite",
            ["ConnectionStrings:Catalog"] = $"Data Source={Path.Combine(_folder, "catalog.db")};Pooling=false",
            ["Storage:BlobRoot"] = Path.Combine(_folder, "blobs"),
            ["Catalog:StatusRetry:Limit"] = "3",
            ["Catalog:StatusRetry:MinInterval"] = "00:00:00.020",
            ["Catalog:StatusRetry:MaxInterval"] = "00:00:00.100",
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDataMarketDefaults(configuration);
        services.AddSingleton<IInterceptor>(_flaky);
        services.AddConsumerFaultHealth();
        services.AddCatalog(configuration);
        services.AddMassTransitTestHarness(bus =>
        {
            bus.AddCatalogConsumers();
            bus.AddConsumer<BrokenWorker>();
        });
        _provider = services.BuildServiceProvider(validateScopes: true);
        await using (var scope = _provider.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<CatalogDbContext>().Database.EnsureCreatedAsync();
        }

        _harness = _provider.GetRequiredService<ITestHarness>();
        await _harness.Start();
    }

    public async Task DisposeAsync()
    {
        await _harness.Stop();
        await _provider.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Should_store_a_completed_valuation_once_when_the_message_arrives_twice()
    {
        var valuationId = await AddPendingValuationAsync();
        var completed = Completed(valuationId, points: 5);

        await _harness.Bus.Publish(completed);
        await _harness.Bus.Publish(completed);

        Assert.Equal(2, await ConsumedCountAsync<ValuationCompleted>(2));
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var valuation = await db.Valuations.Include(v => v.Sellers).SingleAsync(v => v.Id == valuationId);
        Assert.Equal(ValuationStatus.Completed, valuation.Status);
        Assert.Single(valuation.Sellers);
        Assert.NotNull(valuation.PointsBlobId);
        using var blob = scope.ServiceProvider.GetRequiredService<ContentAddressedBlobStore>().OpenRead(valuation.PointsBlobId);
        Assert.Equal(5, PointValueBlob.ReadPage(blob, 0, 100).Total);
    }

    [Fact]
    public async Task Should_keep_sizes_and_start_time_when_completed_overtakes_started()
    {
        // Seen in distributed mode: a finished valuation read testPoints null, completedTestPoints 0, startedAt == finishedAt.
        var valuationId = await AddPendingValuationAsync();
        var startedAt = DateTimeOffset.UtcNow.AddSeconds(-30);
        await _harness.Bus.Publish(Completed(valuationId, points: 3) with { TrainingPoints = 3, TestPoints = 7, StartedAt = startedAt });
        Assert.Equal(1, await ConsumedCountAsync<ValuationCompleted>(1));
        await _harness.Bus.Publish(new ValuationStarted { ValuationId = valuationId, TrainingPoints = 3, TestPoints = 7, StartedAt = startedAt });
        Assert.Equal(1, await ConsumedCountAsync<ValuationStarted>(1));

        var valuation = await ValuationAsync(valuationId);
        Assert.Equal(ValuationStatus.Completed, valuation.Status);
        Assert.Equal((7, 7, 3), (valuation.TestPoints, valuation.CompletedTestPoints, valuation.TrainingPoints));
        Assert.Equal(startedAt.UtcDateTime, valuation.StartedAt!.Value, TimeSpan.FromMilliseconds(1));
        Assert.NotEqual(valuation.StartedAt, valuation.FinishedAt);
    }

    [Fact]
    public async Task Should_show_running_when_progress_overtakes_started()
    {
        // Seen under load: "Pending 15/20" while the valuation was running.
        var valuationId = await AddPendingValuationAsync();
        await _harness.Bus.Publish(Progressed(valuationId, 15));
        Assert.Equal(1, await ConsumedCountAsync<ValuationProgressed>(1));
        Assert.Equal(ValuationStatus.Running, await StatusAsync(valuationId));

        var startedAt = DateTimeOffset.UtcNow.AddSeconds(-5);
        await _harness.Bus.Publish(new ValuationStarted { ValuationId = valuationId, TrainingPoints = 9, TestPoints = 100, StartedAt = startedAt });
        Assert.Equal(1, await ConsumedCountAsync<ValuationStarted>(1));
        var valuation = await ValuationAsync(valuationId);
        Assert.Equal((ValuationStatus.Running, 15, 9), (valuation.Status, valuation.CompletedTestPoints, valuation.TrainingPoints));
        Assert.Equal(startedAt.UtcDateTime, valuation.StartedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task Should_apply_a_status_event_after_the_database_was_locked_for_a_while()
    {
        // Seen under load: status updates failed with "database is locked" and were dropped.
        var valuationId = await AddPendingValuationAsync();
        _flaky.FailNextUpdates(2);
        await _harness.Bus.Publish(Completed(valuationId, points: 2));
        Assert.Equal(1, await ConsumedCountAsync<ValuationCompleted>(1));

        Assert.Equal(0, _flaky.Remaining);
        Assert.Equal(ValuationStatus.Completed, await StatusAsync(valuationId));
        Assert.Equal(HealthStatus.Healthy, (await HealthAsync()).Status);
    }

    [Fact]
    public async Task Should_report_unhealthy_when_a_status_event_fails_after_every_retry()
    {
        var valuationId = await AddPendingValuationAsync();
        Assert.Equal(HealthStatus.Healthy, (await HealthAsync()).Status);
        _flaky.FailNextUpdates(100);
        await _harness.Bus.Publish(Completed(valuationId, points: 2));
        Assert.Equal(1, await ConsumedCountAsync<ValuationCompleted>(1));
        _flaky.FailNextUpdates(0);

        Assert.Equal(ValuationStatus.Pending, await StatusAsync(valuationId));
        Assert.True(await _harness.Published.Any<Fault<ValuationCompleted>>());
        var report = await HealthAsync();
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        Assert.Contains("ValuationCompleted", report.Entries["consumers"].Description);
        Assert.Contains("database is locked", report.Entries["consumers"].Description);
    }

    [Theory]
    [InlineData(ValuationStatus.Pending, ValuationStatus.Running, true)]
    [InlineData(ValuationStatus.Pending, ValuationStatus.Completed, true)]
    [InlineData(ValuationStatus.Running, ValuationStatus.Cancelled, true)]
    [InlineData(ValuationStatus.Running, ValuationStatus.Pending, false)]
    [InlineData(ValuationStatus.Completed, ValuationStatus.Running, false)]
    [InlineData(ValuationStatus.Completed, ValuationStatus.Failed, false)]
    [InlineData(ValuationStatus.Cancelled, ValuationStatus.Completed, false)]
    [InlineData(ValuationStatus.Failed, ValuationStatus.Completed, false)]
    public void Should_only_move_a_valuation_forward(ValuationStatus from, ValuationStatus to, bool allowed) =>
        Assert.Equal(allowed, ValuationStateMachine.CanMove(from, to));

    [Fact]
    public async Task Should_not_go_back_to_running_when_started_arrives_after_completed()
    {
        var valuationId = await AddPendingValuationAsync();
        await _harness.Bus.Publish(Completed(valuationId, points: 2));
        Assert.Equal(1, await ConsumedCountAsync<ValuationCompleted>(1));
        await _harness.Bus.Publish(new ValuationStarted { ValuationId = valuationId, TrainingPoints = 2, TestPoints = 1, StartedAt = DateTimeOffset.UtcNow });
        Assert.Equal(1, await ConsumedCountAsync<ValuationStarted>(1));

        Assert.Equal(ValuationStatus.Completed, await StatusAsync(valuationId));
    }

    [Fact]
    public async Task Should_end_completed_when_started_and_completed_race()
    {
        var ids = new List<Guid>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add(await AddPendingValuationAsync());
        }

        await Task.WhenAll(ids.SelectMany(id => new[]
        {
            _harness.Bus.Publish(new ValuationStarted { ValuationId = id, TrainingPoints = 3, TestPoints = 1, StartedAt = DateTimeOffset.UtcNow }),
            _harness.Bus.Publish(Completed(id, points: 3)),
            _harness.Bus.Publish(Progressed(id, 1)),
        }));
        Assert.Equal(20, await ConsumedCountAsync<ValuationCompleted>(20));
        Assert.Equal(20, await ConsumedCountAsync<ValuationStarted>(20));
        Assert.Equal(20, await ConsumedCountAsync<ValuationProgressed>(20));

        foreach (var id in ids)
        {
            Assert.Equal(ValuationStatus.Completed, await StatusAsync(id));
        }
    }

    [Fact]
    public async Task Should_record_progress_that_only_moves_forward()
    {
        var valuationId = await AddPendingValuationAsync();
        await _harness.Bus.Publish(Progressed(valuationId, 40));
        Assert.Equal(1, await ConsumedCountAsync<ValuationProgressed>(1));
        await _harness.Bus.Publish(Progressed(valuationId, 10));
        Assert.Equal(2, await ConsumedCountAsync<ValuationProgressed>(2));

        await using var scope = _provider.CreateAsyncScope();
        var valuation = await scope.ServiceProvider.GetRequiredService<CatalogDbContext>().Valuations.SingleAsync(v => v.Id == valuationId);
        Assert.Equal(40, valuation.CompletedTestPoints);
        Assert.Equal(100, valuation.TestPoints);
    }

    [Fact]
    public async Task Should_mark_the_valuation_failed_when_the_worker_gives_up()
    {
        var valuationId = await AddPendingValuationAsync();
        // A worker that blows up: MassTransit itself publishes the Fault<RequestValuation> the catalog listens for.
        await _harness.Bus.Publish(new RequestValuation
        {
            ValuationId = valuationId,
            BuyerId = "buyer",
            TaskId = Guid.NewGuid(),
            Task = new DatasetReference { BlobId = "x", Format = "csv", LabelColumn = "label" },
            Listings = [],
            Method = "knn-shapley",
            K = 5,
            RequestedAt = DateTimeOffset.UtcNow,
        });
        Assert.Equal(1, await ConsumedCountAsync<Fault<RequestValuation>>(1));

        await using var scope = _provider.CreateAsyncScope();
        var valuation = await scope.ServiceProvider.GetRequiredService<CatalogDbContext>().Valuations.SingleAsync(v => v.Id == valuationId);
        Assert.Equal(ValuationStatus.Failed, valuation.Status);
        Assert.Contains("disk on fire", valuation.Error);
    }

    private async Task<int> ConsumedCountAsync<T>(int expected)
        where T : class
    {
        // Wait until the harness has seen the expected number of consumptions (or its inactivity timeout).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_harness.Consumed.Select<T>().Count() < expected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await _harness.InactivityTask;
        return _harness.Consumed.Select<T>().Count();
    }

    private Task<HealthReport> HealthAsync() => _provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

    private async Task<ValuationRun> ValuationAsync(Guid valuationId)
    {
        await using var scope = _provider.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<CatalogDbContext>().Valuations.AsNoTracking().SingleAsync(v => v.Id == valuationId);
    }

    private async Task<ValuationStatus> StatusAsync(Guid valuationId)
    {
        await using var scope = _provider.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<CatalogDbContext>().Valuations.SingleAsync(v => v.Id == valuationId)).Status;
    }

    private async Task<Guid> AddPendingValuationAsync()
    {
        await using var scope = _provider.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var valuation = new ValuationRun
        {
            Id = Guid.NewGuid(),
            BuyerId = "buyer",
            TaskId = Guid.NewGuid(),
            Method = "knn-shapley",
            K = 5,
            ListingIds = Guid.NewGuid().ToString(),
            Status = ValuationStatus.Pending,
            RequestedAt = DateTime.UtcNow,
        };
        db.Valuations.Add(valuation);
        await db.SaveChangesAsync();
        return valuation.Id;
    }

    private static ValuationProgressed Progressed(Guid valuationId, int done) => new()
    {
        ValuationId = valuationId,
        CompletedTestPoints = done,
        TotalTestPoints = 100,
        At = DateTimeOffset.UtcNow,
    };

    private static ValuationCompleted Completed(Guid valuationId, int points) => new()
    {
        ValuationId = valuationId,
        Method = "knn-shapley",
        TotalUtility = 0.5,
        Sellers = [new SellerValue { SellerId = "s1", Points = points, Value = 0.5, StandardError = null }],
        Points = Enumerable.Range(0, points).Select(i => new PointValue { ListingId = Guid.Empty, Row = i, Value = 0.1, StandardError = 0.01 }).ToList(),
        CompletedAt = DateTimeOffset.UtcNow,
    };

    private sealed class BrokenWorker : IConsumer<RequestValuation>
    {
        public Task Consume(ConsumeContext<RequestValuation> context) => throw new IOException("disk on fire");
    }

    /// <summary>Fails the next N updates of the valuations table the way a locked SQLite database does.</summary>
    private sealed class FlakyDatabase : DbCommandInterceptor
    {
        private int _remaining;

        public int Remaining => Volatile.Read(ref _remaining);

        public void FailNextUpdates(int count) => Volatile.Write(ref _remaining, count);

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("UPDATE \"valuations\"", StringComparison.Ordinal))
            {
                int current;
                do
                {
                    current = Volatile.Read(ref _remaining);
                    if (current <= 0)
                    {
                        return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
                    }
                }
                while (Interlocked.CompareExchange(ref _remaining, current - 1, current) != current);

                throw new SqliteException("SQLite Error 5: 'database is locked'.", 5);
            }

            return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
        }
    }
}
