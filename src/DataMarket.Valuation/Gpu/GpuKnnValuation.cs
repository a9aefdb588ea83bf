using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;
using ILGPU;
using ILGPU.Runtime;

namespace DataMarket.Valuation.Gpu;

/// <summary>What the device values: exact KNN-Shapley classification or regression, with its labels or targets.</summary>
/// <summary>
/// What the device values: exact KNN-Shapley classification (classes), regression (targets), or asymmetric
/// classification over ordered groups (classes plus each point's precedence group, groups or tiers, and where each
/// precedence group starts when points are bucketed by it).
/// </summary>
internal sealed record GpuKnnJob(
    int K,
    int[]? Classes = null,
    int[]? TestClasses = null,
    double[]? Targets = null,
    double[]? TestTargets = null,
    int[]? PrecedenceGroups = null,
    int[]? PrecedenceStart = null,
    double[]? SellerWeights = null)
{
    public bool IsRegression => Targets is not null;

    /// <summary>Exact seller-level values: only the group (seller) moments and the utility are computed.</summary>
    public bool IsSeller => SellerWeights is not null;

    public bool IsAsymmetric => PrecedenceGroups is not null;
}

/// <summary>
/// Exact KNN-Shapley classification, regression, asymmetric (tiered) classification and exact seller-level values
/// entirely on the device: distance keys (the training matrix
/// resident or streamed in blocks), one radix sort per test point, the linear recursion as per-rank terms plus one
/// scan, the scatter back to training order, per-group sums, and the moments of every training point and group over
/// the fixed <see cref="TestPointBlocks"/> blocks merged in block order, all held on the device until the end. Only
/// the per-test-point utilities (one double each) come back per launch; the host reduces them over the same blocks.
/// The result is the CPU path's (<see cref="KnnShapley.Accumulate"/>) to rounding: same order, same term
/// expressions, sums over ranks by a scan instead of one running sum.
/// </summary>
internal sealed class GpuKnnValuation : IDisposable
{
    /// <summary>Per test point in flight: keys (8 bytes) and four double arrays (values and three scan buffers) per training point.</summary>
    private const long BytesPerPair = 8 + (4 * 8);

    private const int MaxTestPointsPerLaunch = 64;

    private readonly ValuationDevice _device;
    private readonly GpuKernels _kernels;
    private readonly GpuRecursionKernels _recursion;
    private readonly AcceleratorStream _stream;
    private readonly List<MemoryBuffer> _buffers = [];
    private readonly GpuTrainingRows _train;
    private readonly int _n;
    private readonly int _groupCount;
    private readonly int _featureCount;
    private readonly int _width;

    private GpuKnnValuation(ValuationDevice device, TrainingSet train)
    {
        _device = device;
        _kernels = device.Kernels;
        _recursion = device.RecursionKernels;
        _stream = _kernels.Accelerator.CreateStream();
        _n = train.Count;
        _groupCount = train.GroupCount;
        _featureCount = train.FeatureCount;
        _train = new GpuTrainingRows(_kernels, _stream, train.Features, train.FeatureCount, device.RowsPerPass(train.FeatureCount, train.Count));
        _width = device.TestPointsPerLaunch > 0 ? device.TestPointsPerLaunch : DefaultWidth(_kernels.Accelerator, _n);
    }

    /// <summary>How many test points went through per launch (a whole number of blocks).</summary>
    public int TestPointsPerLaunch => _width;

    /// <summary>Training-matrix blocks per launch: 1 when the matrix is resident.</summary>
    public int TrainingPasses => _train.Passes;

    private static int DefaultWidth(Accelerator accelerator, int n)
    {
        var fit = accelerator.MemorySize / 2 / (BytesPerPair * Math.Max(1, n));

        // Index1D launches index W x N in an int.
        var indexable = int.MaxValue / Math.Max(1, n);
        var width = (int)Math.Min(Math.Min(fit, indexable), MaxTestPointsPerLaunch);
        return Math.Max(TestPointBlocks.Size, width / TestPointBlocks.Size * TestPointBlocks.Size);
    }

    /// <summary>
    /// The moments of test points [<paramref name="first"/>, first + <paramref name="count"/>) for <paramref name="job"/>,
    /// reduced as <see cref="KnnShapley.Accumulate"/> reduces them.
    /// </summary>
    public static ShapleyMoments Accumulate(
        ValuationDevice device,
        GpuKnnJob job,
        TrainingSet train,
        float[] testFeatures,
        int first,
        int count,
        IProgress<int>? progress,
        CancellationToken cancellationToken)
    {
        using var valuation = new GpuKnnValuation(device, train);
        return valuation.Run(job, train.Groups, testFeatures, first, count, progress, cancellationToken);
    }

    private ShapleyMoments Run(GpuKnnJob job, int[] groups, float[] testFeatures, int first, int count, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        var totals = new ShapleyMoments(_n, _groupCount);
        if (count == 0)
        {
            return totals;
        }

        if (_n == 0)
        {
            // No training data: every value is empty and each test point's utility is 0, as on the CPU path.
            var empty = new ShapleyMoments(0, _groupCount);
            for (var start = 0; start < count; start += TestPointBlocks.Size)
            {
                var block = new ShapleyMoments(0, _groupCount);
                for (var t = start; t < Math.Min(count, start + TestPointBlocks.Size); t++)
                {
                    block.Add([], new double[_groupCount], 0);
                }

                empty.Merge(block);
            }

            return empty;
        }

        var accelerator = _kernels.Accelerator;
        var width = _width;
        var pairs = (long)width * _n;
        var keys = Allocate<ulong>(pairs);
        var values = Allocate<double>(pairs);
        var a = Allocate<double>(pairs);
        var b = Allocate<double>(pairs);
        var c = Allocate<double>(pairs);
        var tests = Allocate<float>((long)width * _featureCount);
        var utility = Allocate<double>(width);
        var groupValues = Allocate<double>((long)width * _groupCount);
        var pointMean = Allocate<double>(_n);
        var pointM2 = Allocate<double>(_n);
        var groupMean = Allocate<double>(_groupCount);
        var groupM2 = Allocate<double>(_groupCount);
        var sortTemp = Allocate<int>(_kernels.SortTempLength(_n));
        var scanTemp = Allocate<double>(GpuRecursionKernels.ScanTempLength(width, _n));

        // Group members in training order, bucketed by group, for the per-group sums.
        var groupStart = new int[_groupCount + 1];
        foreach (var group in groups)
        {
            groupStart[group + 1]++;
        }

        for (var g = 0; g < _groupCount; g++)
        {
            groupStart[g + 1] += groupStart[g];
        }

        var members = new int[_n];
        var cursor = groupStart[..^1];
        for (var i = 0; i < _n; i++)
        {
            members[cursor[groups[i]]++] = i;
        }

        var memberBuffer = Upload(members);
        var groupStartBuffer = Upload(groupStart);
        var labels = job.IsRegression ? null : Upload(job.Classes!);
        var memberGroups = job.IsSeller ? Upload(groups) : null;
        var targets = job.IsRegression ? Upload(job.Targets!) : null;
        var testLabels = Allocate<int>(width);
        var precedence = job.IsAsymmetric ? Upload(job.PrecedenceGroups!) : null;
        var precedenceStart = job.IsAsymmetric ? Upload(job.PrecedenceStart!) : null;
        var scratchStride = job.IsAsymmetric ? GpuRecursionKernels.AsymmetricScratch(_n, job.PrecedenceStart!.Length - 1, job.K) : 0;
        var scratch = Allocate<int>(width * (job.IsSeller ? _groupCount : scratchStride));
        var sellerScratch = Allocate<double>(job.IsSeller ? 2L * width * _groupCount * (job.K + 1) : 0);
        var weights = job.IsSeller ? Upload(job.SellerWeights!) : null;
        var testTargets = Allocate<double>(width);

        var utilityTotals = new RunningMoments(1);
        var launchUtility = new double[width];
        long counted = 0;
        for (var start = 0; start < count; start += width)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var inLaunch = Math.Min(width, count - start);
            var testFirst = first + start;
            var launchPairs = (long)inLaunch * _n;
            var launchKeys = keys.SubView(0, launchPairs);
            var testRows = tests.SubView(0, (long)inLaunch * _featureCount);
            testRows.CopyFromCPU(_stream, testFeatures.AsSpan(testFirst * _featureCount, inLaunch * _featureCount));
            _train.ComputeKeys(_stream, testRows, inLaunch, launchKeys);
            for (var t = 0; t < inLaunch; t++)
            {
                _kernels.SortKeys(_stream, launchKeys.SubView((long)t * _n, _n), sortTemp);
            }

            var index = (int)launchPairs;
            if (job.IsRegression)
            {
                testTargets.SubView(0, inLaunch).CopyFromCPU(_stream, job.TestTargets!.AsSpan(testFirst, inLaunch));
                _recursion.TargetsByRank(_stream, index, launchKeys, targets!.View, a);
                _recursion.InclusiveSums(_stream, a, b, inLaunch, _n, scanTemp);
                _recursion.RegressionSuffixTerms(_stream, index, launchKeys, targets.View, _n, job.K, a);
                _recursion.InclusiveSums(_stream, a, c, inLaunch, _n, scanTemp);
                _recursion.RegressionTerms(_stream, index, launchKeys, targets.View, testTargets, b, c, _n, job.K, a, utility);
            }
            else
            {
                testLabels.SubView(0, inLaunch).CopyFromCPU(_stream, job.TestClasses!.AsSpan(testFirst, inLaunch));
                if (job.IsSeller)
                {
                    _recursion.SellerExact(_stream, inLaunch, launchKeys, labels!.View, memberGroups!.View, testLabels, weights!.View, scratch, sellerScratch, _n, job.K, groupValues, utility);
                }
                else if (job.IsAsymmetric)
                {
                    _recursion.Asymmetric(_stream, inLaunch, launchKeys, labels!.View, precedence!.View, precedenceStart!.View, testLabels, scratch, (int)scratchStride, _n, job.K, values, utility);
                }
                else
                {
                    _recursion.ClassificationTerms(_stream, index, launchKeys, labels!.View, testLabels, _n, job.K, a);
                    _recursion.ClassificationUtility(_stream, inLaunch, launchKeys, labels.View, testLabels, _n, job.K, utility);
                }
            }

            if (!job.IsAsymmetric && !job.IsSeller)
            {
                _recursion.InclusiveSums(_stream, a, c, inLaunch, _n, scanTemp);
                _recursion.ScatterReversed(_stream, index, launchKeys, c, _n, values);
            }

            if (!job.IsSeller)
            {
                _recursion.BlockMoments(_stream, _n, values, _n, inLaunch, counted, pointMean, pointM2);
            }

            if (job.IsSeller)
            {
                _recursion.BlockMoments(_stream, _groupCount, groupValues, _groupCount, inLaunch, counted, groupMean, groupM2);
            }
            else if (_groupCount > 0)
            {
                _recursion.GroupSums(_stream, new Index2D(_groupCount, inLaunch), values, memberBuffer.View, groupStartBuffer.View, _n, groupValues);
                _recursion.BlockMoments(_stream, _groupCount, groupValues, _groupCount, inLaunch, counted, groupMean, groupM2);
            }

            utility.SubView(0, inLaunch).CopyToCPU(_stream, launchUtility.AsSpan(0, inLaunch));
            _stream.Synchronize();

            // The utility's moments on the host, over the same blocks in the same order.
            for (var block = 0; block < inLaunch; block += TestPointBlocks.Size)
            {
                var blockMoments = new RunningMoments(1);
                for (var t = block; t < Math.Min(inLaunch, block + TestPointBlocks.Size); t++)
                {
                    blockMoments.Add([launchUtility[t]]);
                }

                utilityTotals.Merge(blockMoments);
            }

            counted += inLaunch;
            progress?.Report(start + inLaunch);
        }

        if (!job.IsSeller)
        {
            totals.Points.Merge(RunningMoments.FromState(counted, Download(pointMean, _n), Download(pointM2, _n)));
        }

        totals.Groups.Merge(RunningMoments.FromState(counted, Download(groupMean, _groupCount), Download(groupM2, _groupCount)));
        totals.Utility.Merge(utilityTotals);
        return totals;
    }

    private ArrayView<T> Allocate<T>(long length)
        where T : unmanaged
    {
        // ILGPU refuses zero-length buffers (no groups, say); one element stands in.
        var buffer = _kernels.Accelerator.Allocate1D<T>(Math.Max(1, length));
        _buffers.Add(buffer);
        return buffer.View.SubView(0, length);
    }

    private MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(T[] data)
        where T : unmanaged
    {
        var buffer = _kernels.Accelerator.Allocate1D<T>(Math.Max(1, data.Length));
        _buffers.Add(buffer);
        if (data.Length > 0)
        {
            buffer.View.SubView(0, data.Length).CopyFromCPU(_stream, data);
        }

        return buffer;
    }

    private double[] Download(ArrayView<double> view, int length)
    {
        var result = new double[length];
        if (length > 0)
        {
            view.SubView(0, length).CopyToCPU(_stream, result);
            _stream.Synchronize();
        }

        return result;
    }

    public void Dispose()
    {
        _stream.Synchronize();
        foreach (var buffer in _buffers)
        {
            buffer.Dispose();
        }

        _train.Dispose();
        _stream.Dispose();
        GC.KeepAlive(_device);
    }
}
