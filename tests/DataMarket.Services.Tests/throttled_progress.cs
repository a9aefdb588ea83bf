using DataMarket.ValuationWorker.Consumers;

namespace DataMarket.Services.Tests;

public sealed class throttled_progress
{
    [Fact]
    public async Task publishes_every_report_when_the_interval_is_zero_and_the_last_publish_finished()
    {
        var published = new List<(int Done, int Total)>();
        var progress = new ThrottledProgress(TimeSpan.Zero, (done, total) =>
        {
            published.Add((done, total));
            return Task.CompletedTask;
        }) { Total = 9 };

        for (var i = 1; i <= 3; i++)
        {
            progress.Report(i);
            await progress.FlushAsync();
        }

        Assert.Equal([(1, 9), (2, 9), (3, 9)], published);
    }

    [Fact]
    public async Task publishes_nothing_within_the_interval()
    {
        var count = 0;
        var progress = new ThrottledProgress(TimeSpan.FromHours(1), (_, _) =>
        {
            Interlocked.Increment(ref count);
            return Task.CompletedTask;
        });

        for (var i = 0; i < 1000; i++)
        {
            progress.Report(i);
        }

        await progress.FlushAsync();
        Assert.Equal(0, count);
    }
}
