using System.Diagnostics;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// A real crash: the process committing transfers gets SIGKILL (Process.Kill) in the middle of a burst,
/// with transactions in flight. A new process then retries the whole plan by transfer id, as a client
/// that lost its answers would. Every acknowledged batch must exist exactly once, nothing may be half
/// committed, and the verifier must pass.
/// </summary>
public abstract class a_writer_killed_mid_burst<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : LedgerDatabaseFixture
{
    private const int Seed = 11;
    // At most about 128 padded acknowledgements fit in the pipe (see CrashWriter.Padding), so the first run
    // ends between 100 and about 240 batches: always in the middle of the plan.
    private const int Batches = 600;
    private const int Writers = 8;
    private const int KillAfterAcknowledgements = 100;

    [Fact]
    public async Task every_acknowledged_transfer_exists_exactly_once_after_kill_9_and_a_retry_of_the_rest()
    {
        var plan = CrashWriter.Plan(Seed, Batches);
        var batchesById = plan.ToDictionary(b => b[0].Id);

        var acknowledged = new HashSet<Guid>();
        var (first, firstErrors) = StartChild();
        using (var child = first)
        {
            while (acknowledged.Count < KillAfterAcknowledgements)
            {
                var line = await child.StandardOutput.ReadLineAsync() ?? throw new Xunit.Sdk.XunitException("The writer ended early: " + await firstErrors);
                Assert.NotEqual("done", line);
                var (id, status) = ParseAck(line);
                Assert.Equal(LedgerStatus.Committed, status);
                acknowledged.Add(id);
            }

            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync();
            // Acknowledgements already in the pipe were printed before the kill: they count too.
            while (await child.StandardOutput.ReadLineAsync() is { } line)
            {
                Assert.NotEqual("done", line);
                acknowledged.Add(ParseAck(line).Id);
            }
        }

        Assert.InRange(acknowledged.Count, KillAfterAcknowledgements, Batches - 1);

        // The restarted process retries everything by id: acknowledged batches are already there.
        var answers = new Dictionary<Guid, LedgerStatus>();
        var (second, secondErrors) = StartChild();
        using (var child = second)
        {
            var finished = false;
            while (await child.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line == "done")
                {
                    finished = true;
                    continue;
                }

                var (id, status) = ParseAck(line);
                answers.Add(id, status);
            }

            await child.WaitForExitAsync();
            Assert.True(finished && child.ExitCode == 0, "The restarted writer failed: " + await secondErrors);
        }

        Assert.Equal(Batches, answers.Count);
        Assert.All(acknowledged, id => Assert.Equal(LedgerStatus.AlreadyCommitted, answers[id]));
        Assert.All(answers.Values, status => Assert.True(status is LedgerStatus.Committed or LedgerStatus.AlreadyCommitted, status.ToString()));

        // Exactly once: one commit event per planned transfer in the whole log, and no other.
        var database = fixture.Database;
        var commits = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var after = 0L; ;)
        {
            var page = await database.Events.ReadAllAsync(after, 5_000);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var recorded in page.Where(e => e.Type == "ledger.transfer_committed"))
            {
                commits[recorded.StreamId] = commits.GetValueOrDefault(recorded.StreamId) + 1;
            }

            after = page[^1].Sequence;
        }

        var planned = batchesById.Values.SelectMany(b => b).Select(t => "transfer-" + t.Id.ToString("D")).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(planned.Order(StringComparer.Ordinal), commits.Keys.Order(StringComparer.Ordinal));
        Assert.All(commits, c => Assert.Equal(1, c.Value));

        var expected = plan.SelectMany(b => b).GroupBy(t => t.Credit.Id).ToDictionary(g => g.Key, g => g.Sum(t => t.Amount));
        var buyers = await database.Ledger.GetBalancesAsync($"buyer:crash-{Seed}-");
        Assert.Equal(expected.Count, buyers.Count);
        Assert.All(buyers, b => Assert.Equal(expected[b.AccountId], b.PostedBalance));

        var report = await database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }

    private static (Guid Id, LedgerStatus Status) ParseAck(string line)
    {
        var parts = line.Split(' ');
        Assert.True(parts.Length == 4 && parts[0] == "ack" && parts[3] == CrashWriter.Padding, $"unexpected output '{line}'");
        return (Guid.Parse(parts[1]), Enum.Parse<LedgerStatus>(parts[2]));
    }

    /// <summary>Starts the writer; its stderr is drained from the start, so a chatty child never blocks on a full pipe.</summary>
    private (Process Child, Task<string> Errors) StartChild()
    {
        var (connectionString, schema) = fixture.Location;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "exec", typeof(CrashWriter).Assembly.Location, CrashWriter.Command, fixture.Provider, connectionString, schema, Seed.ToString(System.Globalization.CultureInfo.InvariantCulture), Batches.ToString(System.Globalization.CultureInfo.InvariantCulture), Writers.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }

        var child = Process.Start(start) ?? throw new InvalidOperationException("Could not start the writer process.");
        return (child, child.StandardError.ReadToEndAsync());
    }
}

public sealed class a_writer_killed_mid_burst_on_postgres(PostgresFixture fixture) : a_writer_killed_mid_burst<PostgresFixture>(fixture);

public sealed class a_writer_killed_mid_burst_on_sqlite(SqliteFixture fixture) : a_writer_killed_mid_burst<SqliteFixture>(fixture);
