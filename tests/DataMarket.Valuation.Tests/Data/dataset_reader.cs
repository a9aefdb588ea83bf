using System.Text;
using DataMarket.Valuation.Data;

namespace DataMarket.Valuation.Tests.Data;

public sealed class dataset_reader
{
    [Fact]
    public void reads_csv_with_the_label_anywhere_quoted_fields_and_blank_lines()
    {
        var data = Csv("\"x 0\",label,x1\n1.5,cat,2\n\n-3e2,\"dog\",4\n");

        Assert.Equal(2, data.Rows);
        Assert.Equal(2, data.FeatureCount);
        Assert.Equal(new[] { 1.5f, 2f, -300f, 4f }, data.Features);
        Assert.Equal(new[] { "cat", "dog" }, data.Labels);
        Assert.Equal(new[] { "x 0", "x1" }, data.FeatureNames);
    }

    [Fact]
    public void numeric_labels_compare_as_numbers()
    {
        var data = Csv("x,label\n1,1\n2,1.0\n3,2\n");
        Assert.Equal(data.Labels[0], data.Labels[1]);
        Assert.NotEqual(data.Labels[0], data.Labels[2]);
    }

    [Fact]
    public void reads_json_lines_with_a_group_field()
    {
        var data = Load("{\"features\":[1,2],\"label\":\"a\",\"seller\":\"s1\"}\n{\"features\":[3,4],\"label\":1,\"seller\":\"s2\"}\n",
            DatasetFormat.JsonLines, group: "seller");
        Assert.Equal(new[] { 1f, 2f, 3f, 4f }, data.Features);
        Assert.Equal(new[] { "a", "1" }, data.Labels);
        Assert.Equal(new[] { "s1", "s2" }, data.Groups);
    }

    public static TheoryData<string, DatasetFormat, int?, string> BadFiles() => new()
    {
        { "x,label\n1,0\nfoo,1\n", DatasetFormat.Csv, null, "data.txt, row 2, column 'x': 'foo' is not a number" },
        { "x,label\n1,0\nNaN,1\n", DatasetFormat.Csv, null, "data.txt, row 2, column 'x': 'NaN' is not a finite number" },
        { "x,label\n-Infinity,1\n", DatasetFormat.Csv, null, "row 1, column 'x': '-Infinity' is not a finite number" },
        { "x,label\n1e39,1\n", DatasetFormat.Csv, null, "row 1, column 'x': '1e39' is outside the float32 range" },
        { "x,label\n1,\n", DatasetFormat.Csv, null, "row 1, column 'label': the value is empty" },
        { "x,label\n1,0,5\n", DatasetFormat.Csv, null, "row 1: the row has 3 fields but the header has 2" },
        { "x,y\n1,0\n", DatasetFormat.Csv, null, "column 'label': the header has no label column 'label' (columns: x, y)" },
        { "x,label\n", DatasetFormat.Csv, null, "the file has a header but no data rows" },
        { "", DatasetFormat.Csv, null, "the file is empty" },
        { "label\n1\n", DatasetFormat.Csv, null, "the header has no feature columns" },
        { "x,x,label\n1,2,0\n", DatasetFormat.Csv, null, "column 'x': the header names this column more than once" },
        { "x,label\n1,0\n2,\"1\n", DatasetFormat.Csv, null, "row 2: a quoted field is not closed" },
        { "x,y,label\n1,2,0\n", DatasetFormat.Csv, 3, "the data has 2 feature columns but the buyer's task has 3" },
        { "{\"features\":[1,2],\"label\":0}\n{\"features\":[1],\"label\":0}\n", DatasetFormat.JsonLines, null, "row 2, column 'features': the row has 1 features but earlier rows have 2" },
        { "{\"features\":[1,\"a\"],\"label\":0}\n", DatasetFormat.JsonLines, null, "row 1, column 'features[1]': \"a\" is not a number" },
        { "{\"features\":[1,2]}\n", DatasetFormat.JsonLines, null, "row 1, column 'label': the object has no 'label' field" },
        { "{\"label\":0}\n", DatasetFormat.JsonLines, null, "row 1, column 'features': the object has no 'features' field" },
        { "{\"features\":[1,2],\"label\":0}\nnot json\n", DatasetFormat.JsonLines, null, "row 2: the line is not valid JSON" },
        { "\n\n", DatasetFormat.JsonLines, null, "the file is empty" },
        { "{\"features\":[1,2],\"label\":0}\n", DatasetFormat.JsonLines, 3, "row 1: the data has 2 feature columns but the buyer's task has 3" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void bad_input_is_rejected_naming_file_row_and_column(string content, DatasetFormat format, int? expectedFeatures, string message)
    {
        var exception = Assert.Throws<DatasetFormatException>(() => Load(content, format, expectedFeatures: expectedFeatures));
        Assert.Contains(message, exception.Message);
        Assert.StartsWith("data.txt", exception.Message);
    }

    [Fact]
    public void row_numbers_count_blank_lines_so_they_match_the_file()
    {
        var exception = Assert.Throws<DatasetFormatException>(() => Csv("x,label\n1,0\n\n\nbad,1\n"));
        Assert.Equal(4, exception.Row);
        Assert.Equal("x", exception.Column);
    }

    [Fact]
    public void validate_counts_rows_without_keeping_them()
    {
        var summary = DatasetReader.Validate(
            new MemoryStream(Encoding.UTF8.GetBytes("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")),
            new DatasetReadOptions { SourceName = "data.txt" });
        Assert.Equal(3, summary.Rows);
        Assert.Equal(2, summary.Features);
        Assert.Equal(new[] { "a", "b" }, summary.FeatureNames);
    }

    [Theory]
    [InlineData(DatasetFormat.Csv)]
    [InlineData(DatasetFormat.JsonLines)]
    public void a_file_without_newlines_is_refused_after_the_line_cap_not_read_whole(DatasetFormat format)
    {
        // 256 MiB of 'x' and no newline: the reader must give up after about the cap, not buffer the whole "line".
        using var endless = new EndlessStream((byte)'x', 256L << 20);
        var options = new DatasetReadOptions { SourceName = "huge.csv", Format = format };

        var exception = Assert.Throws<DatasetFormatException>(() => DatasetReader.Validate(endless, options));

        Assert.Contains($"longer than {options.MaxLineLength} characters", exception.Message);
        Assert.True(endless.Position < 4L << 20, $"read {endless.Position} bytes before refusing");
        Assert.True(exception.Message.Length < 300, exception.Message);
    }

    [Fact]
    public void an_overlong_field_is_refused_and_errors_quote_only_a_short_excerpt()
    {
        var longField = new string('7', 5000);
        var tooLong = Assert.Throws<DatasetFormatException>(() => Csv($"x,label\n{longField},0\n"));
        Assert.Contains("row 1", tooLong.Message);
        Assert.Contains("longer than 1024 characters", tooLong.Message);
        Assert.DoesNotContain(longField[..100], tooLong.Message);

        var junk = new string('z', 900);
        var notNumber = Assert.Throws<DatasetFormatException>(() => Csv($"x,label\n{junk},0\n"));
        Assert.Contains("'zzzz", notNumber.Message);
        Assert.Contains("(900 characters)", notNumber.Message);
        Assert.True(notNumber.Message.Length < 200, notNumber.Message);

        var header = string.Join(',', Enumerable.Range(0, 500).Select(i => $"column_{i}_{new string('h', 500)}"));
        var noLabel = Assert.Throws<DatasetFormatException>(() => Csv($"{header}\n"));
        Assert.Contains("500 in all", noLabel.Message);
        Assert.True(noLabel.Message.Length < 1000, $"{noLabel.Message.Length} characters");
    }

    [Fact]
    public void crlf_line_ends_and_a_last_line_without_newline_are_read()
    {
        var data = Csv("x,label\r\n1,0\r\n\r\n2,1");
        Assert.Equal(new[] { 1f, 2f }, data.Features);
        Assert.Equal(2, data.Rows);
    }

    private sealed class EndlessStream(byte value, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            buffer.AsSpan(offset, n).Fill(value);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static TabularDataset Csv(string content) => Load(content, DatasetFormat.Csv);

    private static TabularDataset Load(string content, DatasetFormat format, string? group = null, int? expectedFeatures = null) =>
        DatasetReader.Load(new MemoryStream(Encoding.UTF8.GetBytes(content)), new DatasetReadOptions
        {
            SourceName = "data.txt",
            Format = format,
            GroupColumn = group,
            ExpectedFeatures = expectedFeatures,
        });
}
