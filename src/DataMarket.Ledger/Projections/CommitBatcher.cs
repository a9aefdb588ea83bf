using System.Threading.Channels;
using DataMarket.Ledger.Events;
using DataMarket.Ledger.Model;

namespace DataMarket.Ledger.Projections;

internal sealed record CommitCommand(IReadOnlyList<TransferRequest> Transfers, LedgerCommandOptions? Options, EventMetadata Metadata);

/// <summary>
/// Group commit, as TigerBeetle batches transfers: commands that arrive while a transaction is in flight
/// are committed together in the next one, so concurrent writers share round trips and one WAL flush.
/// Every caller still gets its own result only after its transaction is durable.
/// </summary>
internal sealed class CommitBatcher : IAsyncDisposable
{
    private const int MaxCommandsPerTransaction = 256;
    private const int MaxAttempts = 25;

    private readonly LedgerService _ledger;
    private readonly Channel<(CommitCommand Command, TaskCompletionSource<LedgerResult> Completion)> _queue =
        Channel.CreateUnbounded<(CommitCommand, TaskCompletionSource<LedgerResult>)>(new UnboundedChannelOptions { SingleReader = false });
    private readonly Task[] _writers;

    public CommitBatcher(LedgerService ledger, int writers)
    {
        _ledger = ledger;
        _writers = Enumerable.Range(0, writers).Select(_ => Task.Run(WriteLoopAsync)).ToArray();
    }

    public Task<LedgerResult> CommitAsync(IReadOnlyList<TransferRequest> transfers, LedgerCommandOptions? options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var completion = new TaskCompletionSource<LedgerResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((new CommitCommand(transfers, options, _ledger.NewMetadata(options)), completion)))
        {
            throw new ObjectDisposedException(nameof(LedgerDatabase));
        }

        return completion.Task;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<(CommitCommand Command, TaskCompletionSource<LedgerResult> Completion)>(MaxCommandsPerTransaction);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxCommandsPerTransaction && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                var results = await CommitWithRetriesAsync(batch.Select(b => b.Command).ToList()).ConfigureAwait(false);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(results[i]);
                }
            }
            catch (Exception) when (batch.Count > 1)
            {
                // One command broke the shared transaction in a way no retry fixes: commit each on its own,
                // so the others are not failed for a neighbour's fault.
                foreach (var (command, completion) in batch)
                {
                    try
                    {
                        completion.TrySetResult((await CommitWithRetriesAsync([command]).ConfigureAwait(false))[0]);
                    }
                    catch (Exception alone)
                    {
                        completion.TrySetException(alone);
                    }
                }
            }
            catch (Exception exception)
            {
                batch[0].Completion.TrySetException(exception);
            }
        }
    }

    private async Task<LedgerResult[]> CommitWithRetriesAsync(List<CommitCommand> commands)
    {
        var backend = _ledger.Backend;
        for (var attempt = 1; ; attempt++)
        {
            await using var work = await backend.BeginUnitOfWorkAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                // One read of everything the group touches, then one save of everything it writes.
                var (results, wrote) = await _ledger.CommitManyAsync(work, commands, inbox: null, CancellationToken.None).ConfigureAwait(false);
                if (wrote)
                {
                    await work.CommitAsync(CancellationToken.None).ConfigureAwait(false);
                }

                return results;
            }
            catch (Exception exception) when (attempt < MaxAttempts && backend.IsTransient(exception))
            {
                // Another writer won a race (a new account or stream, a stale revision): recompute everything.
                await Task.Delay(Random.Shared.Next(1, 1 + Math.Min(50, 1 << Math.Min(attempt, 6)))).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAll(_writers).ConfigureAwait(false);
    }
}
