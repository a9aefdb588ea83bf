using System.Collections.Concurrent;
using DataMarket.Ledger.Model;
using DataMarket.Ledger.Tests.Harness;
using Npgsql;

namespace DataMarket.Ledger.Tests.Ledger;

/// <summary>
/// The server drops our connections (as a PostgreSQL restart would) while writers are mid-burst.
/// Clients retry with the same transfer ids, as they are told to. Nothing acknowledged may be lost and
/// nothing may be applied twice. Only backends carrying this test's own application name are killed:
/// the server is shared with other test runs.
/// </summary>
public sealed class connections_killed_during_a_burst_on_postgres(PostgresFixture fixture) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task every_acknowledged_transfer_survives_exactly_once()
    {
        var applicationName = "ledger-kill-" + Guid.NewGuid().ToString("N")[..12];
        var connectionString = new NpgsqlConnectionStringBuilder(PostgresFixture.ConnectionString) { ApplicationName = applicationName }.ConnectionString;
        await using var database = await LedgerDatabase.OpenPostgresAsync(connectionString, fixture.Schema);
        var buyers = Enumerable.Range(0, 4).Select(i => AccountRef.Buyer($"kill-{applicationName}-{i}", "USD")).ToArray();
        await database.Ledger.CommitAsync(buyers.Select(b => new TransferRequest
        {
            Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = b, Amount = 1_000_000, Code = TransferCode.Charge,
        }).ToArray());

        var acknowledged = new ConcurrentBag<TransferRequest>();
        var failures = 0;
        long killed = 0;
        using var stopKilling = new CancellationTokenSource();
        var killer = Task.Run(async () =>
        {
            await using var admin = new NpgsqlConnection(PostgresFixture.ConnectionString);
            await admin.OpenAsync();
            while (!stopKilling.IsCancellationRequested)
            {
                // Often enough to break many writes, seldom enough that a retry on a slow machine gets through.
                await Task.Delay(100);
                await using var kill = new NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = @name AND pid <> pg_backend_pid()", admin);
                kill.Parameters.AddWithValue("name", applicationName);
                Interlocked.Add(ref killed, (long)(await kill.ExecuteScalarAsync())!);
            }
        });

        while (Interlocked.Read(ref killed) == 0)
        {
            // The pool's idle connections die first, so the burst starts on broken connections.
            await Task.Delay(10);
        }

        var writers = Enumerable.Range(0, 6).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                var transfer = new TransferRequest
                {
                    Id = Guid.NewGuid(),
                    Debit = buyers[(writer + i) % buyers.Length],
                    Credit = AccountRef.SellerHeld($"kill-seller-{writer}", "USD"),
                    Amount = 1 + i,
                    Code = TransferCode.Allocation,
                };
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        var result = await database.Ledger.CommitAsync(transfer);
                        Assert.True(result.Status is LedgerStatus.Committed or LedgerStatus.AlreadyCommitted, result.ToString());
                        acknowledged.Add(transfer);
                        break;
                    }
                    catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException && attempt < 50)
                    {
                        // The connection died under us; the outcome is unknown, so retry with the same id.
                        Interlocked.Increment(ref failures);
                        await Task.Delay(5);
                    }
                }
            }
        }));

        await Task.WhenAll(writers);
        await stopKilling.CancelAsync();
        await killer;

        Assert.True(Interlocked.Read(ref killed) > 0, "no connection was killed");
        Assert.Equal(150, acknowledged.Count);
        foreach (var transfer in acknowledged)
        {
            var stored = await fixture.Database.Ledger.GetTransferAsync(transfer.Id);
            Assert.NotNull(stored);
            Assert.Equal(transfer.Amount, stored.Amount);
        }

        var held = (await fixture.Database.Ledger.GetBalancesAsync("seller_held:kill-seller-")).Sum(a => a.PostedBalance);
        Assert.Equal(acknowledged.Sum(t => t.Amount), held);
        var report = await fixture.Database.VerifyAsync();
        Assert.True(report.Passed, report.ToText());
    }
}
