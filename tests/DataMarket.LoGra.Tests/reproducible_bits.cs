using DataMarket.Compute;
using DataMarket.Compute.Managed;
using DataMarket.Compute.OpenBlas;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.LoGra;
using DataMarket.Valuation.Statistics;

namespace DataMarket.LoGra.Tests;

/// <summary>
/// The reproducibility promise on LoGra: a valuation's bits depend only on its inputs and options (seed included),
/// never on how many threads the products ran on or on other work in the process. Both compute backends keep it:
/// the managed GEMM splits only rows of C, and OpenBLAS runs single-threaded on fixed tiles of C.
/// </summary>
public sealed class reproducible_bits
{
    private static readonly TabularDataset Train = Table(48, seed: 1);
    private static readonly TabularDataset Test = Table(9, seed: 2);
    private static readonly string[] Texts = Enumerable.Range(0, 10).Select(i => $"seller {i} lists {new string('x', i)} data").ToArray();

    public static TheoryData<string, string> Cases => new()
    {
        { "managed", "tabular" },
        { "managed", "text" },
        { "openblas", "tabular" },
        { "openblas", "text" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void one_thread_and_four_threads_give_the_same_bits(string backend, string data)
    {
        var single = Value(Backend(backend, 1), data);
        AssertSameBits(single, Value(Backend(backend, 4), data));
        AssertSameBits(single, Value(Backend(backend, 3), data));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task other_work_in_the_process_does_not_change_the_bits(string backend, string data)
    {
        var alone = Value(Backend(backend, 1), data);

        // Other products on the same backend (so the same native library) run all the while, on threads of their own.
        using var stop = new CancellationTokenSource();
        var shared = Backend(backend, 4);
        var noise = Enumerable.Range(0, 2).Select(i => Task.Factory.StartNew(
            () =>
            {
                var size = 300 + (i * 37);
                var a = new float[size * size];
                var c = new float[size * size];
                new SeededRandom((ulong)i).FillNormal(a.AsSpan(), 0f, 1f);
                while (!stop.IsCancellationRequested)
                {
                    shared.Gemm(Transpose.None, Transpose.Transposed, size, size, size, 1f, a, size, a, size, 0f, c, size);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();
        try
        {
            AssertSameBits(alone, Value(shared, data));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(noise);
        }
    }

    private static LograValuationResult Value(ComputeBackend backend, string data)
    {
        var options = new LograValuationOptions
        {
            // The CLI's default proxy sizes (MLP 64 wide, GPT 2 x 64 with context 64): products large enough for a
            // BLAS to split them across threads, which is what changed the bits before.
            Projection = new ProjectionOptions { Rank = data == "tabular" ? 8 : 4 },
            Epochs = data == "tabular" ? 5 : 1,
            Mode = ScoreMode.Cosine,
            KeepPairwise = true,
            Backend = backend,
        };
        return data == "tabular"
            ? LograValuation.ValueTabular(Train, Test, options)
            : LograValuation.ValueText(Texts, ["seller 3 lists xxx data", "b"], options);
    }

    private static ComputeBackend Backend(string name, int threads)
    {
        if (name == "managed")
        {
            return new ManagedBackend(threads);
        }

        var openBlas = OpenBlasBackend.TryCreate(out var detail, threads);
        if (openBlas is null && Environment.GetEnvironmentVariable("DATAMARKET_REQUIRE_OPENBLAS") != "0")
        {
            Assert.Fail($"OpenBLAS did not load ({detail}). Install libopenblas0-pthread, or set DATAMARKET_REQUIRE_OPENBLAS=0 to opt out.");
        }

        return (ComputeBackend?)openBlas ?? new ManagedBackend(threads);
    }

    private static void AssertSameBits(LograValuationResult expected, LograValuationResult actual)
    {
        Assert.Equal(Bits(expected.Values), Bits(actual.Values));
        Assert.Equal(Bits([expected.Total]), Bits([actual.Total]));
        Assert.Equal(
            expected.Pairwise!.Cast<double>().Select(BitConverter.DoubleToInt64Bits),
            actual.Pairwise!.Cast<double>().Select(BitConverter.DoubleToInt64Bits));
    }

    private static long[] Bits(ValueEstimate[] values) =>
        values.SelectMany(v => new[] { BitConverter.DoubleToInt64Bits(v.Value), BitConverter.DoubleToInt64Bits(v.StandardError) }).ToArray();

    private static TabularDataset Table(int rows, int seed)
    {
        var random = new SeededRandom((ulong)seed);
        var features = new float[rows * 3];
        var labels = new string[rows];
        for (var i = 0; i < rows; i++)
        {
            var c = i % 3;
            labels[i] = "abc"[c].ToString();
            for (var j = 0; j < 3; j++)
            {
                features[(i * 3) + j] = (float)((2 * c * (j + 1)) + random.NextNormal());
            }
        }

        return new TabularDataset(features, 3, labels);
    }
}
