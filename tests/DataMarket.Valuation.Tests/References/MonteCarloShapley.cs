namespace DataMarket.Valuation.Tests.References;

/// <summary>
/// Test-only truncated Monte-Carlo permutation estimator (Ghorbani and Zou's TMC-Shapley). Within a permutation it stops
/// scanning once the prefix utility has stayed within <c>tolerance</c> of U(all) for more than five consecutive steps
/// and credits the remaining players nothing. With groups it draws only the restricted permutations (each group
/// shuffled on its own, groups in order), which estimates asymmetric values.
/// </summary>
internal static class MonteCarloShapley
{
    public static double[] Truncated(int players, Func<IReadOnlyList<int>, double> utility, int permutations, Random random, double tolerance = 0, int[]? groups = null)
    {
        groups ??= new int[players];
        var groupCount = players == 0 ? 0 : groups.Max() + 1;
        var full = utility(Enumerable.Range(0, players).ToList());
        var values = new double[players];
        for (var t = 0; t < permutations; t++)
        {
            var permutation = new List<int>(players);
            for (var g = 0; g < groupCount; g++)
            {
                var members = Enumerable.Range(0, players).Where(i => groups[i] == g).ToArray();
                random.Shuffle(members);
                permutation.AddRange(members);
            }

            var prefix = new List<int>(players);
            var before = utility(prefix);
            var closeSteps = 0;
            foreach (var player in permutation)
            {
                if (closeSteps > 5)
                {
                    break;
                }

                prefix.Add(player);
                var after = utility(prefix);
                values[player] += after - before;
                before = after;
                closeSteps = Math.Abs(full - after) <= tolerance ? closeSteps + 1 : 0;
            }
        }

        for (var i = 0; i < players; i++)
        {
            values[i] /= permutations;
        }

        return values;
    }
}
