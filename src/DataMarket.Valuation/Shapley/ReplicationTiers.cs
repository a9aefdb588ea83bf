namespace DataMarket.Valuation.Shapley;

/// <summary>
/// When a seller counts as copying an earlier-listed one. A row duplicates another when both have the same label and
/// either the same features bit for bit or, when <see cref="NearDuplicateDistance"/> is positive, features within
/// that Euclidean distance. A seller copies an earlier seller when more than <see cref="Fraction"/> of its rows
/// duplicate rows of that seller.
/// </summary>
public sealed record DuplicatePolicy
{
    public const double DefaultFraction = 0.10;

    public double Fraction { get; init; } = DefaultFraction;

    /// <summary>0 means exact matches only (hashing, linear time); a positive distance compares every pair of rows of two sellers.</summary>
    public double NearDuplicateDistance { get; init; }

    public static DuplicatePolicy Default { get; } = new();

    public void Validate()
    {
        if (!(Fraction >= 0 && Fraction < 1))
        {
            throw new ValuationInputException($"the duplicate fraction must be in [0, 1), got {Fraction}");
        }

        if (!(NearDuplicateDistance >= 0) || double.IsInfinity(NearDuplicateDistance))
        {
            throw new ValuationInputException($"the near-duplicate distance must be a finite number >= 0, got {NearDuplicateDistance}");
        }
    }
}

/// <summary>Seller <see cref="Copier"/> duplicates <see cref="DuplicatedRows"/> of its <see cref="CopierRows"/> rows from the earlier seller <see cref="Original"/>.</summary>
public sealed record CopyFinding(int Copier, int Original, int DuplicatedRows, int CopierRows);

/// <summary>The tier of each group (by group index) and the copies that put groups in later tiers.</summary>
public sealed record TierAssignment(int[] TierOfGroup, IReadOnlyList<CopyFinding> Copies)
{
    public int TierCount => TierOfGroup.Length == 0 ? 0 : TierOfGroup.Max() + 1;
}

/// <summary>
/// Replication-robust tiers for the revenue split. Groups are taken in listing order (group index 0 listed first). A
/// group goes one tier after every earlier group it copies; a group that copies nobody is in tier 0, so independent
/// sellers share the first tier whatever order they listed in, and only a copy of an earlier listing is pushed back.
/// </summary>
public static class ReplicationTiers
{
    public static TierAssignment Assign(TrainingSet train, DuplicatePolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        policy ??= DuplicatePolicy.Default;
        policy.Validate();
        var groupCount = train.GroupCount;
        var rowsOf = new List<int>[groupCount];
        for (var g = 0; g < groupCount; g++)
        {
            rowsOf[g] = [];
        }

        for (var i = 0; i < train.Count; i++)
        {
            rowsOf[train.Groups[i]].Add(i);
        }

        var duplicated = policy.NearDuplicateDistance > 0
            ? NearDuplicateCounts(train, rowsOf, policy.NearDuplicateDistance)
            : ExactDuplicateCounts(train, rowsOf);

        var tiers = new int[groupCount];
        var copies = new List<CopyFinding>();
        for (var copier = 0; copier < groupCount; copier++)
        {
            var rows = rowsOf[copier].Count;
            for (var original = 0; original < copier; original++)
            {
                var count = duplicated[copier][original];
                // Compare count / rows > fraction without dividing by an empty seller.
                if (count > 0 && count > policy.Fraction * rows)
                {
                    copies.Add(new CopyFinding(copier, original, count, rows));
                    tiers[copier] = Math.Max(tiers[copier], tiers[original] + 1);
                }
            }
        }

        return new TierAssignment(tiers, copies);
    }

    /// <summary>counts[s][e] = rows of group s that equal (features and class) some row of the earlier group e.</summary>
    private static int[][] ExactDuplicateCounts(TrainingSet train, List<int>[] rowsOf)
    {
        var groupCount = rowsOf.Length;
        var counts = new int[groupCount][];
        // Distinct rows seen so far, each with the groups (ascending) that hold it.
        var representatives = new Dictionary<ulong, List<(int Row, List<int> Groups)>>();
        for (var group = 0; group < groupCount; group++)
        {
            counts[group] = new int[group];
            var seenHere = new List<List<int>>(rowsOf[group].Count);
            foreach (var row in rowsOf[group])
            {
                var key = RowHash(train, row);
                if (!representatives.TryGetValue(key, out var bucket))
                {
                    bucket = [];
                    representatives[key] = bucket;
                }

                List<int>? holders = null;
                foreach (var (representative, groups) in bucket)
                {
                    if (SameRow(train, representative, row))
                    {
                        holders = groups;
                        break;
                    }
                }

                if (holders is null)
                {
                    holders = [];
                    bucket.Add((row, holders));
                }

                // Holders lists earlier groups only until this group's rows are all counted (added below).
                foreach (var earlier in holders)
                {
                    if (earlier < group)
                    {
                        counts[group][earlier]++;
                    }
                }

                seenHere.Add(holders);
            }

            foreach (var holders in seenHere)
            {
                if (holders.Count == 0 || holders[^1] != group)
                {
                    holders.Add(group);
                }
            }
        }

        return counts;
    }

    /// <summary>Pairwise comparison of every row with every row of each earlier group: O(N^2 * features).</summary>
    private static int[][] NearDuplicateCounts(TrainingSet train, List<int>[] rowsOf, double distance)
    {
        var limit = distance * distance;
        var counts = new int[rowsOf.Length][];
        for (var group = 0; group < rowsOf.Length; group++)
        {
            counts[group] = new int[group];
            foreach (var row in rowsOf[group])
            {
                var features = train.Row(row);
                for (var earlier = 0; earlier < group; earlier++)
                {
                    foreach (var other in rowsOf[earlier])
                    {
                        if (train.Classes[other] == train.Classes[row] && SquaredDistance(features, train.Row(other)) <= limit)
                        {
                            counts[group][earlier]++;
                            break;
                        }
                    }
                }
            }
        }

        return counts;
    }

    private static double SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = 0.0;
        for (var f = 0; f < a.Length; f++)
        {
            var d = (double)a[f] - b[f];
            sum += d * d;
        }

        return sum;
    }

    private static bool SameRow(TrainingSet train, int a, int b) =>
        train.Classes[a] == train.Classes[b] && train.Row(a).SequenceEqual(train.Row(b));

    /// <summary>FNV-1a over the feature bits and the class; collisions are resolved by <see cref="SameRow"/>.</summary>
    private static ulong RowHash(TrainingSet train, int row)
    {
        var hash = 14695981039346656037UL;
        foreach (var value in train.Row(row))
        {
            hash = (hash ^ (uint)BitConverter.SingleToInt32Bits(value)) * 1099511628211UL;
        }

        return (hash ^ (uint)train.Classes[row]) * 1099511628211UL;
    }
}
