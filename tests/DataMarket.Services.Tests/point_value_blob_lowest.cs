using DataMarket.ServiceDefaults.Storage;

namespace DataMarket.Services.Tests;

/// <summary>
/// The "rows most likely mislabelled" selection over a valuation's result blob: the lowest values, ties by ordinal,
/// across page boundaries and listings, checked against sorting every point read back from the blob.
/// </summary>
public sealed class point_value_blob_lowest
{
    [Theory]
    [InlineData(10, 7)]
    [InlineData(10, 4096)]
    [InlineData(1, 3)]
    [InlineData(2000, 64)]
    public void picks_the_lowest_points_with_ties_by_ordinal_whatever_the_page_size(int count, int pageSize)
    {
        var random = new Random(20261127);
        // Few distinct values so ties are common; a NaN and an infinity are skipped.
        var segments = new[] { 300, 1, 0, 699 }.Select(n =>
        {
            var values = Enumerable.Range(0, n).Select(_ => Math.Round(random.NextDouble() * 8) / 4 - 1).ToArray();
            return new PointValueSegment(Guid.NewGuid(), values, values.Select(_ => 0.1).ToArray());
        }).ToArray();
        segments[0].Values[17] = double.NaN;
        segments[3].Values[5] = double.NegativeInfinity;
        using var blob = new MemoryStream();
        PointValueBlob.Write(blob, segments);
        var bytes = blob.ToArray();

        var all = PointValueBlob.ReadPage(new MemoryStream(bytes), 0, int.MaxValue).Items;
        var expected = all.Where(p => double.IsFinite(p.Value)).OrderBy(p => p.Value).ThenBy(p => p.Ordinal).Take(count).ToList();
        var lowest = PointValueBlob.Lowest(() => new MemoryStream(bytes), count, pageSize);

        Assert.Equal(1000, all.Count);
        Assert.Equal(Math.Min(count, 998), lowest.Count);
        Assert.Equal(expected, lowest);
    }

    [Fact]
    public void an_empty_blob_has_no_lowest_points()
    {
        using var blob = new MemoryStream();
        PointValueBlob.Write(blob, []);
        Assert.Empty(PointValueBlob.Lowest(() => new MemoryStream(blob.ToArray()), 10));
    }
}
