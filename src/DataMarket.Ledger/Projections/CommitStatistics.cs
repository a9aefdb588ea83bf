using System.Diagnostics;

namespace DataMarket.Ledger.Projections;

/// <summary>Where group commits spend their time, for <c>bench ledger</c>'s profile line (a few interlocked adds per group).</summary>
internal sealed class CommitStatistics
{
    private long _groups;
    private long _commands;
    private long _retries;
    private long _loadTicks;
    private long _decideTicks;
    private long _saveTicks;

    public void Record(int commands, long loadTicks, long decideTicks, long saveTicks)
    {
        Interlocked.Increment(ref _groups);
        Interlocked.Add(ref _commands, commands);
        Interlocked.Add(ref _loadTicks, loadTicks);
        Interlocked.Add(ref _decideTicks, decideTicks);
        Interlocked.Add(ref _saveTicks, saveTicks);
    }

    public void RecordRetry() => Interlocked.Increment(ref _retries);

    public CommitTotals Read() => new(
        Interlocked.Read(ref _groups),
        Interlocked.Read(ref _commands),
        Interlocked.Read(ref _retries),
        Interlocked.Read(ref _loadTicks),
        Interlocked.Read(ref _decideTicks),
        Interlocked.Read(ref _saveTicks));
}

internal readonly record struct CommitTotals(long Groups, long Commands, long Retries, long LoadTicks, long DecideTicks, long SaveTicks)
{
    public static CommitTotals operator -(CommitTotals a, CommitTotals b) => new(
        a.Groups - b.Groups, a.Commands - b.Commands, a.Retries - b.Retries, a.LoadTicks - b.LoadTicks, a.DecideTicks - b.DecideTicks, a.SaveTicks - b.SaveTicks);

    public static CommitTotals operator +(CommitTotals a, CommitTotals b) => new(
        a.Groups + b.Groups, a.Commands + b.Commands, a.Retries + b.Retries, a.LoadTicks + b.LoadTicks, a.DecideTicks + b.DecideTicks, a.SaveTicks + b.SaveTicks);

    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
