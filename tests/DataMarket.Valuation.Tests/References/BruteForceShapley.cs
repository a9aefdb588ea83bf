namespace DataMarket.Valuation.Tests.References;

/// <summary>Test-only reference: Shapley values by enumerating every permutation of the players.</summary>
internal static class BruteForceShapley
{
    public static double[] Values(int players, Func<IReadOnlyList<int>, double> utility)
    {
        var values = new double[players];
        var permutation = Enumerable.Range(0, players).ToArray();
        long count = 0;
        do
        {
            var prefix = new List<int>(players);
            var before = utility(prefix);
            foreach (var player in permutation)
            {
                prefix.Add(player);
                var after = utility(prefix);
                values[player] += after - before;
                before = after;
            }

            count++;
        }
        while (NextPermutation(permutation));

        for (var i = 0; i < players; i++)
        {
            values[i] /= count;
        }

        return values;
    }

    private static bool NextPermutation(int[] items)
    {
        var i = items.Length - 2;
        while (i >= 0 && items[i] >= items[i + 1])
        {
            i--;
        }

        if (i < 0)
        {
            return false;
        }

        var j = items.Length - 1;
        while (items[j] <= items[i])
        {
            j--;
        }

        (items[i], items[j]) = (items[j], items[i]);
        Array.Reverse(items, i + 1, items.Length - i - 1);
        return true;
    }

    /// <summary>
    /// The KNN classifier utility computed from scratch: rank the subset by double-precision squared distance
    /// (ties by index), count label matches among the min(K, |S|) nearest, divide by K.
    /// </summary>
    public static double KnnUtility(IReadOnlyList<int> subset, double[][] train, int[] classes, double[] test, int testClass, int k)
    {
        var ranked = subset
            .Select(i => (Index: i, Distance: train[i].Zip(test, (a, b) => (a - b) * (a - b)).Sum()))
            .OrderBy(p => p.Distance)
            .ThenBy(p => p.Index)
            .Take(k)
            .Count(p => classes[p.Index] == testClass);
        return (double)ranked / k;
    }
}
