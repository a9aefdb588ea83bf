namespace DataMarket.Valuation.Tests.References;

/// <summary>Test-only references for asymmetric (ordered-partition) Shapley values.</summary>
internal static class AsymmetricBruteForce
{
    /// <summary>
    /// Averages marginal contributions over exactly the permutations in which every earlier group entirely precedes
    /// every later group (the definition). Cost is the product of the groups' factorials, so keep groups tiny.
    /// </summary>
    public static double[] OverRestrictedPermutations(int[] groups, int groupCount, Func<IReadOnlyList<int>, double> utility)
    {
        var players = groups.Length;
        var members = Enumerable.Range(0, groupCount).Select(g => Enumerable.Range(0, players).Where(i => groups[i] == g).ToArray()).ToArray();
        var values = new double[players];
        long count = 0;

        void Recurse(int group, List<int> prefix)
        {
            if (group == groupCount)
            {
                var running = new List<int>(players);
                var before = utility(running);
                foreach (var player in prefix)
                {
                    running.Add(player);
                    var after = utility(running);
                    values[player] += after - before;
                    before = after;
                }

                count++;
                return;
            }

            var permutation = members[group].ToArray();
            do
            {
                var extended = new List<int>(prefix);
                extended.AddRange(permutation);
                Recurse(group + 1, extended);
            }
            while (BruteForceShapley.NextPermutation(permutation));
        }

        Recurse(0, []);
        for (var i = 0; i < players; i++)
        {
            values[i] /= count;
        }

        return values;
    }

    /// <summary>
    /// The equivalent game form: a point of group a gets its ordinary Shapley value in v(S) = U(B_a + S) - U(B_a) over
    /// the players of group a, B_a being all earlier groups. Enumerates subsets of one group at a time.
    /// </summary>
    public static double[] ByGroupGames(int[] groups, int groupCount, Func<IReadOnlyList<int>, double> utility)
    {
        var values = new double[groups.Length];
        for (var a = 0; a < groupCount; a++)
        {
            var earlier = Enumerable.Range(0, groups.Length).Where(i => groups[i] < a).ToArray();
            var members = Enumerable.Range(0, groups.Length).Where(i => groups[i] == a).ToArray();
            var groupValues = BruteForceShapley.SubsetValues(
                members.Length,
                subset => utility(earlier.Concat(subset.Select(s => members[s])).ToList()));
            for (var s = 0; s < members.Length; s++)
            {
                values[members[s]] = groupValues[s];
            }
        }

        return values;
    }
}
