namespace DataMarket.Valuation.Statistics;

/// <summary>
/// Folds a sequence of partial states (one per fixed block, in order) into one along a fixed binary tree: neighbours
/// merge pairwise, level by level, and a short tail merges as if padded with empty blocks. Merging partial moments is not
/// associative in floating point, so a left fold over shards would give other bits for other shard sizes; this tree
/// does not depend on where the input was cut, as long as each cut holds 2^j blocks and was itself reduced by this
/// tree: a shard's result is then a node of the same tree, and reducing the shards' results (all at one level) gives
/// the root with the same bits as reducing every block at once.
/// </summary>
/// <param name="merge">Merges the right (later) state into the left one and returns the left.</param>
public sealed class PairwiseReduction<T>(Func<T, T, T> merge)
    where T : class
{
    private readonly List<(int Level, T State)> _stack = [];

    /// <summary>Adds the next state (a block's, or a shard's reduction, each at the same level as the others).</summary>
    public void Add(T state)
    {
        var level = 0;
        while (_stack.Count > 0 && _stack[^1].Level == level)
        {
            state = merge(_stack[^1].State, state);
            _stack.RemoveAt(_stack.Count - 1);
            level++;
        }

        _stack.Add((level, state));
    }

    /// <summary>The root: what is left merges from the right (the tail's missing siblings are empty).</summary>
    public T? Result()
    {
        if (_stack.Count == 0)
        {
            return null;
        }

        var result = _stack[^1].State;
        for (var i = _stack.Count - 2; i >= 0; i--)
        {
            result = merge(_stack[i].State, result);
        }

        return result;
    }
}
