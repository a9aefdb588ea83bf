using System.Collections.Concurrent;
using System.Diagnostics;
using DataMarket.Ledger.Events.Postgres;
using DataMarket.Ledger.Model;
using Npgsql;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// The PostgreSQL server itself restarts while writers are mid-burst. This runs against the test command's own
/// throw-away cluster (port 5433), so restarting it disturbs no other test. Writers retry with the same transfer
/// ids, as clients are told to; everything acknowledged must be there exactly once afterwards.
/// </summary>
public sealed class postgres_restarted_during_a_burst
{
    private static readonly string s_connectionString =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES_RESTARTABLE") is { Length: > 0 } value
            ? value
            : "Host=127.0.0.1;Port=5433;Username=datamarket;Password=datamarket;Database=datamarket";

    private static readonly string s_restartCommand =
        Environment.GetEnvironmentVariable("DATAMARKET_TEST_POSTGRES_RESTART") is { Length: > 0 } command
            ? command
            : "pg_ctlcluster 15 faults restart -m fast";

    [Fact]
    public async Task loses_nothing_that_was_acknowledged()
    {
        var schema = "ledger_restart_" + Guid.NewGuid().ToString("N")[..12];
        var connectionString = new NpgsqlConnectionStringBuilder(s_connectionString) { MaxPoolSize = 10, Timeout = 5 }.ConnectionString;
        var startedBefore = await ServerStartTimeAsync(connectionString);
        try
        {
            await using var database = await LedgerDatabase.OpenPostgresAsync(connectionString, schema);
            var buyers = Enumerable.Range(0, 4).Select(i => AccountRef.Buyer($"restart-buyer-{i}", "EUR")).ToArray();
            await database.Ledger.CommitAsync(buyers.Select(b => new TransferRequest
            {
                Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("EUR"), Credit = b, Amount = 1_000_000, Code = TransferCode.Charge,
            }).ToArray());

            var acknowledged = new ConcurrentBag<TransferRequest>();
            var acknowledgedAt = new ConcurrentBag<DateTime>();
            var restarted = 0;
            var writtenAfterRestart = new int[6];
            // Writers run until the restart is over and each has written more after it, so the burst always spans it.
            var writers = Enumerable.Range(0, writtenAfterRestart.Length).Select(writer => Task.Run(async () =>
            {
                var giveUp = DateTime.UtcNow.AddSeconds(90);
                for (var i = 0; Volatile.Read(ref restarted) == 0 || writtenAfterRestart[writer] < 10; i++)
                {
                    Assert.True(DateTime.UtcNow < giveUp, "the burst did not finish within 90 s");
                    var transfer = new TransferRequest
                    {
                        Id = Guid.NewGuid(),
                        Debit = buyers[(writer + i) % buyers.Length],
                        Credit = AccountRef.SellerHeld($"restart-seller-{writer}", "EUR"),
                        Amount = 1 + (i % 100),
                        Code = TransferCode.Allocation,
                    };
                    while (true)
                    {
                        var restartedBeforeThisTry = Volatile.Read(ref restarted) == 1;
                        try
                        {
                            var result = await database.Ledger.CommitAsync(transfer);
                            Assert.True(result.Status is LedgerStatus.Committed or LedgerStatus.AlreadyCommitted, result.ToString());
                            acknowledged.Add(transfer);
                            acknowledgedAt.Add(DateTime.UtcNow);
                            if (restartedBeforeThisTry)
                            {
                                writtenAfterRestart[writer]++;
                            }

                            break;
                        }
                        catch (Exception exception) when (exception is not Xunit.Sdk.XunitException && DateTime.UtcNow < giveUp)
                        {
                            // The server went away for longer than the ledger's own retries last: the outcome is
                            // unknown, so retry with the same id.
                            await Task.Delay(50);
                        }
                    }

                    await Task.Delay(5);
                }
            })).ToArray();

            while (acknowledged.Count < 30)
            {
                // A writer that gave up ends early: surface its failure instead of waiting here for ever.
                if (writers.FirstOrDefault(w => w.IsCompleted) is { } ended)
                {
                    await ended;
                    Assert.Fail("a writer finished before the burst reached 30 transfers");
                }

                await Task.Delay(10);
            }

            await RestartServerAsync();
            Volatile.Write(ref restarted, 1);
            await Task.WhenAll(writers);

            // The ledger may absorb the outage with its own retries, so callers need not see an error; what must hold
            // is that the restart happened in the middle of the burst.
            var startedAfter = await ServerStartTimeAsync(connectionString);
            Assert.True(startedAfter > startedBefore, "the server did not restart");
            Assert.True(acknowledgedAt.Min() < startedAfter && startedAfter < acknowledgedAt.Max(), "the restart did not fall inside the burst");
            Assert.Equal(acknowledged.Count, acknowledged.Select(t => t.Id).Distinct().Count());
            await using var reopened = await LedgerDatabase.OpenPostgresAsync(connectionString, schema);
            foreach (var transfer in acknowledged)
            {
                var stored = await reopened.Ledger.GetTransferAsync(transfer.Id);
                Assert.NotNull(stored);
                Assert.Equal(transfer.Amount, stored.Amount);
            }

            var held = (await reopened.Ledger.GetBalancesAsync("seller_held:restart-seller-")).Sum(a => a.PostedBalance);
            Assert.Equal(acknowledged.Sum(t => t.Amount), held);
            var report = await reopened.VerifyAsync();
            Assert.True(report.Passed, report.ToText());
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var backend = new PostgresBackend(connectionString, schema);
            await backend.DropSchemaAsync(CancellationToken.None);
        }
    }

    private static async Task RestartServerAsync()
    {
        var parts = s_restartCommand.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var start = new ProcessStartInfo(parts[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in parts.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not run '{s_restartCommand}'");
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"'{s_restartCommand}' failed (it needs root, as the test command runs): {error}");
    }

    private static async Task<DateTime> ServerStartTimeAsync(string connectionString)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT pg_postmaster_start_time()", connection);
                return ((DateTime)(await command.ExecuteScalarAsync())!).ToUniversalTime();
            }
            catch (NpgsqlException) when (attempt < 50)
            {
                await Task.Delay(200);
            }
        }
    }
}
