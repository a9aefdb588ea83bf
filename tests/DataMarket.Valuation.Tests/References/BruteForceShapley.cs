namespace DataMarket.Valuation.Tests.References;

/// <summary>Test-only references: Shapley values straight from their definitions, and the utilities computed from scratch.</summary>
internal static class BruteForceShapley
{
    /// <summary>Shapley values by enumerating every permutation of the players (slow; kept as the most literal reference).</summary>
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

    /// <summary>
    /// Shapley values by the subset formula: phi_i = sum over S without i of |S|! (n - |S| - 1)! / n! * (U(S + i) - U(S)).
    /// Evaluates the utility once per subset, so n = 13 is still quick.
    /// </summary>
    public static double[] SubsetValues(int players, Func<IReadOnlyList<int>, double> utility)
    {
        var subsets = 1 << players;
        var utilities = new double[subsets];
        for (var mask = 0; mask < subsets; mask++)
        {
            utilities[mask] = utility(Members(mask, players));
        }

        // weight[s] = s! (n - s - 1)! / n!, built without factorials.
        var weight = new double[Math.Max(players, 1)];
        if (players > 0)
        {
            weight[0] = 1.0 / players;
            for (var s = 1; s < players; s++)
            {
                weight[s] = weight[s - 1] * s / (players - s);
            }
        }

        var values = new double[players];
        for (var mask = 0; mask < subsets; mask++)
        {
            var size = System.Numerics.BitOperations.PopCount((uint)mask);
            for (var i = 0; i < players; i++)
            {
                if ((mask & (1 << i)) == 0)
                {
                    values[i] += weight[size] * (utilities[mask | (1 << i)] - utilities[mask]);
                }
            }
        }

        return values;
    }

    public static List<int> Members(int mask, int players)
    {
        var members = new List<int>();
        for (var i = 0; i < players; i++)
        {
            if ((mask & (1 << i)) != 0)
            {
                members.Add(i);
            }
        }

        return members;
    }

    public static bool NextPermutation(int[] items)
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

    /// <summary>The subset ranked nearest first by double-precision squared distance, ties by index.</summary>
    public static IEnumerable<int> Nearest(IEnumerable<int> subset, double[][] train, double[] test, int k) =>
        subset
            .Select(i => (Index: i, Distance: train[i].Zip(test, (a, b) => (a - b) * (a - b)).Sum()))
            .OrderBy(p => p.Distance)
            .ThenBy(p => p.Index)
            .Take(k)
            .Select(p => p.Index);

    /// <summary>
    /// The KNN classifier utility computed from scratch: rank the subset by double-precision squared distance
    /// (ties by index), count label matches among the min(K, |S|) nearest, divide by K.
    /// </summary>
    public static double KnnUtility(IEnumerable<int> subset, double[][] train, int[] classes, double[] test, int testClass, int k) =>
        (double)Nearest(subset, train, test, k).Count(i => classes[i] == testClass) / k;

    /// <summary>The KNN regression utility: minus the squared error of (1/K) * the sum of the min(K, |S|) nearest targets.</summary>
    public static double KnnRegressionUtility(IEnumerable<int> subset, double[][] train, double[] targets, double[] test, double testTarget, int k)
    {
        var prediction = Nearest(subset, train, test, k).Sum(i => targets[i]) / k;
        return -(prediction - testTarget) * (prediction - testTarget);
    }
}
