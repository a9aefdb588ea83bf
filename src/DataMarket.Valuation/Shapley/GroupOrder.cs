namespace DataMarket.Valuation.Shapley;

/// <summary>Bad valuation input (group order, options) that a caller should report to the user as it stands.</summary>
public sealed class ValuationInputException(string message) : ArgumentException(message);

/// <summary>Validates a precedence order of groups (for example sellers by listing time) against the groups in the data.</summary>
public static class GroupOrder
{
    /// <summary>
    /// Returns, for each group in <paramref name="groupsInData"/> (by its index there), its position in
    /// <paramref name="order"/>. Throws <see cref="ValuationInputException"/> naming the offending groups when the
    /// order leaves out a group that has data, names a group that has none, or names a group twice.
    /// </summary>
    public static int[] Resolve(IReadOnlyList<string> groupsInData, IReadOnlyList<string> order)
    {
        ArgumentNullException.ThrowIfNull(groupsInData);
        ArgumentNullException.ThrowIfNull(order);
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        var duplicates = new List<string>();
        for (var p = 0; p < order.Count; p++)
        {
            if (!position.TryAdd(order[p], p))
            {
                duplicates.Add(order[p]);
            }
        }

        if (duplicates.Count > 0)
        {
            throw new ValuationInputException($"the group order names {Quote(duplicates.Distinct())} more than once");
        }

        var inData = new HashSet<string>(groupsInData, StringComparer.Ordinal);
        var unknown = order.Where(g => !inData.Contains(g)).ToList();
        if (unknown.Count > 0)
        {
            throw new ValuationInputException(
                $"the group order names {Quote(unknown)} but no training row belongs to {(unknown.Count == 1 ? "it" : "them")} (groups in the data: {Quote(groupsInData)})");
        }

        var missing = groupsInData.Where(g => !position.ContainsKey(g)).ToList();
        if (missing.Count > 0)
        {
            throw new ValuationInputException(
                $"the group order leaves out {Quote(missing)}; every group in the training data must be placed (order given: {Quote(order)})");
        }

        return groupsInData.Select(g => position[g]).ToArray();
    }

    private static string Quote(IEnumerable<string> names) => string.Join(", ", names.Select(n => $"'{n}'"));
}
