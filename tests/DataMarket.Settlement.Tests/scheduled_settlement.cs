using DataMarket.SettlementService.Application;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Settlement.Tests;

/// <summary>The cron trigger comes from configuration and settles the month before its firing.</summary>
public sealed class scheduled_settlement
{
    [Fact]
    public void a_firing_on_the_first_settles_the_month_before()
    {
        Assert.Equal("2026-10", SettlementRunner.PreviousPeriod(new DateTimeOffset(2026, 11, 1, 2, 0, 0, TimeSpan.Zero)));
        Assert.Equal("2025-12", SettlementRunner.PreviousPeriod(new DateTimeOffset(2026, 1, 1, 2, 0, 0, TimeSpan.Zero)));
        // A firing late on the 31st in a zone ahead of UTC is still the UTC month it falls in.
        Assert.Equal("2026-11", SettlementRunner.PreviousPeriod(new DateTimeOffset(2027, 1, 1, 0, 30, 0, TimeSpan.FromHours(2))));
    }

    [Fact]
    public async Task the_configured_cron_fires_the_run_of_the_previous_month()
    {
        await using var site = await SettlementSite.StartAsync(new Dictionary<string, string?>
        {
            ["Settlement:ScheduleEnabled"] = "true",
            ["Settlement:Schedule"] = "* * * * * ?",
        });
        var runner = site.Services.GetRequiredService<SettlementRunner>();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        SettlementRunView? run = null;
        while (run?.Status != "completed")
        {
            Assert.True(DateTime.UtcNow < deadline, "the every-second trigger did not complete a run within two minutes");
            await Task.Delay(100);
            // The firing's own clock decides the month; ask for the month before now and the one before that, in case
            // the test straddles a month boundary.
            run = await runner.GetAsync(SettlementRunner.PreviousPeriod(DateTimeOffset.UtcNow), CancellationToken.None)
                ?? await runner.GetAsync(SettlementRunner.PreviousPeriod(DateTimeOffset.UtcNow.AddDays(-1)), CancellationToken.None);
        }

        Assert.Empty(run.Payouts);
        Assert.True(run.Reconciliation!.Clean);
    }
}
