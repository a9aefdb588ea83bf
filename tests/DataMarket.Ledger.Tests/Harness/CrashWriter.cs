using System.Globalization;
using DataMarket.Ledger.Model;

namespace DataMarket.Ledger.Tests.Harness;

/// <summary>
/// The child process of the kill -9 test (this test assembly's own entry point; the test host never calls
/// it). It commits a plan of transfer batches with several concurrent writers and prints "ack ID STATUS" on
/// stdout for each batch once the ledger has answered, that is once the batch is durable. Its parent kills
/// it with SIGKILL in the middle, runs it again, and checks what the acknowledgements promised.
/// </summary>
public static class CrashWriter
{
    public const string Command = "crash-writer";

    /// <summary>
    /// Pads each acknowledgement to about 512 bytes, so the 64 KiB pipe holds only about 128 unread ones:
    /// once the parent stops reading (to kill), this process can get at most that far ahead, and a plan a few
    /// times longer can never finish before the kill, however the machine schedules the two processes.
    /// </summary>
    public static readonly string Padding = new('.', 460);

    /// <summary>Batches of the plan: (first transfer id, transfers). Deterministic from the seed, so parent and child agree.</summary>
    public static IReadOnlyList<TransferRequest[]> Plan(int seed, int batches)
    {
        var random = new Random(seed);
        var plan = new List<TransferRequest[]>(batches);
        Guid NextId()
        {
            var bytes = new byte[16];
            random.NextBytes(bytes);
            return new Guid(bytes);
        }

        for (var i = 0; i < batches; i++)
        {
            // Charges from payment clearing (which may go either way) are valid in any order, so the
            // outcome does not depend on which writer ran first; every second batch is a linked pair.
            var size = i % 2 == 0 ? 1 : 2;
            plan.Add(Enumerable.Range(0, size).Select(_ => new TransferRequest
            {
                Id = NextId(),
                Debit = AccountRef.PaymentClearing("USD"),
                Credit = AccountRef.Buyer($"crash-{seed}-{random.Next(16)}", "USD"),
                Amount = random.Next(1, 100_000),
                Code = TransferCode.Charge,
                Reference = $"crash-{seed}-{i}",
            }).ToArray());
        }

        return plan;
    }

    public static async Task<int> Main(string[] args)
    {
        // crash-writer <postgresql|sqlite> <connection string> <schema or prefix> <seed> <batches> <writers>
        if (args.Length != 7 || args[0] != Command)
        {
            await Console.Error.WriteLineAsync($"usage: {Command} <postgresql|sqlite> <connection string> <schema> <seed> <batches> <writers>");
            return 2;
        }

        var (provider, connectionString, schema) = (args[1], args[2], args[3]);
        var plan = Plan(int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture));
        var writers = int.Parse(args[6], CultureInfo.InvariantCulture);
        await using var database = provider == "postgresql"
            ? await LedgerDatabase.OpenPostgresAsync(connectionString, schema)
            : await LedgerDatabase.OpenSqliteAsync(connectionString, schema);

        // Each line goes to the pipe in one write of under PIPE_BUF (4 KiB) bytes, which the kernel keeps whole.
        // Console.Out would not do: it writes through a 256-character buffer, so a kill could land between the
        // pieces of one line and the parent would read half an acknowledgement.
        using var output = Console.OpenStandardOutput();
        var gate = new Lock();
        void WriteLine(string line)
        {
            var bytes = System.Text.Encoding.ASCII.GetBytes(line + "\n");
            lock (gate)
            {
                output.Write(bytes);
            }
        }

        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            int index;
            while ((index = Interlocked.Increment(ref next)) < plan.Count)
            {
                var result = await database.Ledger.CommitAsync(plan[index]);
                WriteLine($"ack {plan[index][0].Id} {result.Status} {Padding}");
            }
        })));
        WriteLine("done");
        return 0;
    }
}
