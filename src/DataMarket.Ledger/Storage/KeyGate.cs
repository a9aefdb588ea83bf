namespace DataMarket.Ledger.Storage;

/// <summary>
/// In-process queueing on the rows a unit of work will write (account ids, statement keys): a writer
/// whose keys overlap one in flight waits until that one has committed, then reads what it wrote. Without
/// it, this process's own concurrent group commits would read the same revision of a busy account and all
/// but one would fail the revision check and start over. Writers in other processes are not seen here;
/// the documents' revisions catch those, and the loser retries.
/// </summary>
internal sealed class KeyGate
{
    private readonly Lock _sync = new();
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);
    private readonly LinkedList<(string[] Keys, TaskCompletionSource<Lease> Ready)> _waiting = new();

    public Task<Lease> EnterAsync(IEnumerable<string> keys, CancellationToken cancellationToken)
    {
        var wanted = keys.Distinct(StringComparer.Ordinal).ToArray();
        lock (_sync)
        {
            // First come, first served: a newcomer also waits behind an earlier waiter it overlaps.
            if (!Overlaps(wanted) && !_waiting.Any(w => w.Keys.Any(wanted.Contains)))
            {
                _held.UnionWith(wanted);
                return Task.FromResult(new Lease(this, wanted));
            }

            var ready = new TaskCompletionSource<Lease>(TaskCreationOptions.RunContinuationsAsynchronously);
            var node = _waiting.AddLast((wanted, ready));
            if (cancellationToken.CanBeCanceled)
            {
                cancellationToken.Register(() =>
                {
                    lock (_sync)
                    {
                        if (node.List is not null && ready.TrySetCanceled(cancellationToken))
                        {
                            _waiting.Remove(node);
                        }
                    }
                });
            }

            return ready.Task;
        }
    }

    private bool Overlaps(string[] keys) => keys.Any(_held.Contains);

    private void Release(string[] keys)
    {
        lock (_sync)
        {
            _held.ExceptWith(keys);
            var blocked = new HashSet<string>(StringComparer.Ordinal);
            for (var node = _waiting.First; node is not null;)
            {
                var next = node.Next;
                var (wanted, ready) = node.Value;
                if (!Overlaps(wanted) && !wanted.Any(blocked.Contains))
                {
                    _waiting.Remove(node);
                    _held.UnionWith(wanted);
                    ready.TrySetResult(new Lease(this, wanted));
                }
                else
                {
                    blocked.UnionWith(wanted);
                }

                node = next;
            }
        }
    }

    internal sealed class Lease(KeyGate gate, string[] keys) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release(keys);
            }
        }
    }
}
