using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using DataMarket.Valuation.Gpu;
using DataMarket.Valuation.LoGra;
using DataMarket.Valuation.Shapley;
using DataMarket.Valuation.Statistics;

namespace DataMarket.ValuationWorker.Infrastructure;

/// <summary>Bad request content found by the worker (unreadable data, unknown method): retrying cannot help.</summary>
public sealed class ValuationRejectedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Loads a request's datasets from the blob store and computes the values it asks for.</summary>
public sealed class ValuationRunner(ContentAddressedBlobStore blobs, ValuationDevice device, ILogger<ValuationRunner> logger)
{
    public async Task<ValuationCompleted> RunAsync(
        RequestValuation request,
        Func<int, int, Task>? started,
        IProgress<int>? progress,
        CancellationToken cancellationToken)
    {
        var (parts, test) = LoadInputs(request);
        if (started is not null)
        {
            await started(parts.Sum(p => p.Data.Rows), test.Rows);
        }

        var startedAt = DateTimeOffset.UtcNow;
        DatasetValuationResult result;
        try
        {
            result = await Task.Run(() => Compute(request, parts, test, device, progress, cancellationToken), cancellationToken);
        }
        catch (Exception exception) when (exception is DatasetFormatException or ValuationInputException)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }

        logger.LogInformation(
            "Valuation {ValuationId}: {Points} points x {TestPoints} test points by {Method} on {Device} in {Elapsed:F2}s",
            request.ValuationId, parts.Sum(p => p.Data.Rows), test.Rows, request.Method, device.Name, (DateTimeOffset.UtcNow - startedAt).TotalSeconds);
        return await CompleteAsync(request, parts, test.Rows, result, startedAt, cancellationToken);
    }

    /// <summary>Checks the request and loads its datasets; anything wrong with them is a <see cref="ValuationRejectedException"/>.</summary>
    public (IReadOnlyList<TrainingPart> Parts, TabularDataset Test) LoadInputs(RequestValuation request)
    {
        if (!ValuationMethods.All.Contains(request.Method))
        {
            throw new ValuationRejectedException($"unknown valuation method '{request.Method}' (supported: {string.Join(", ", ValuationMethods.All)})");
        }

        if (!ValuationMethods.TaskTypes.Contains(request.TaskType))
        {
            throw new ValuationRejectedException($"unknown task type '{request.TaskType}' (supported: {string.Join(", ", ValuationMethods.TaskTypes)})");
        }

        if (request.K < 1)
        {
            throw new ValuationRejectedException($"K must be at least 1, got {request.K}");
        }

        var test = Load(request.Task, $"test task {request.TaskId}", expectedFeatures: null);
        var parts = request.Listings
            .Select(l => new TrainingPart(l.ListingId.ToString(), l.SellerId, Load(l.Data, $"listing {l.ListingId}", test.FeatureCount)))
            .ToList();
        return (parts, test);
    }

    /// <summary>Loads and encodes a shardable valuation; bad data is a <see cref="ValuationRejectedException"/>.</summary>
    public ShardedValuation Prepare(RequestValuation request)
    {
        var (parts, test) = LoadInputs(request);
        try
        {
            return ShardedValuation.Prepare(
                request.Method, request.TaskType, parts, test, request.K, request.GroupOrder, $"test task {request.TaskId}", request.Task.LabelColumn, device);
        }
        catch (Exception exception) when (exception is DatasetFormatException or ValuationInputException or ArgumentException)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }
    }

    /// <summary>Stores the point values as a blob and builds the result message that names it.</summary>
    public async Task<ValuationCompleted> CompleteAsync(
        RequestValuation request, IReadOnlyList<TrainingPart> parts, int testPoints, DatasetValuationResult result, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        // Point values go to the blob store and travel by reference: inline they grow with the data.
        PointValuesReference? pointValues = null;
        if (result.PartValues.Count > 0)
        {
            var segments = result.PartValues
                .Select((values, p) => new PointValueSegment(
                    request.Listings[p].ListingId,
                    values.Select(v => v.Value).ToArray(),
                    values.Select(v => v.StandardError).ToArray()))
                .ToList();
            var (blobId, count) = await PointValueBlob.StoreAsync(blobs, segments, cancellationToken);
            pointValues = new PointValuesReference { BlobId = blobId, Count = count };
        }

        var sellers = result.GroupOrder
            .Select(seller => new SellerValue
            {
                SellerId = seller,
                Points = parts.Where(p => p.Group == seller).Sum(p => p.Data.Rows),
                Value = result.GroupValues[seller].Value,
                StandardError = Finite(result.GroupValues[seller].StandardError),
            })
            .ToList();

        return new ValuationCompleted
        {
            ValuationId = request.ValuationId,
            Method = request.Method,
            TotalUtility = result.TotalUtility.Value,
            Sellers = sellers,
            PointValues = pointValues,
            TrainingPoints = parts.Sum(p => p.Data.Rows),
            TestPoints = testPoints,
            StartedAt = startedAt,
            CompletedAt = DateTimeOffset.UtcNow,
        };
    }

    private static DatasetValuationResult Compute(
        RequestValuation request, IReadOnlyList<TrainingPart> parts, TabularDataset test, ValuationDevice device, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        switch (request.Method)
        {
            case ValuationMethods.KnnShapley when request.TaskType == ValuationMethods.Regression:
                return DatasetValuation.KnnShapleyRegression(parts, test, request.K, $"test task {request.TaskId}", request.Task.LabelColumn, progress, cancellationToken, device);
            case ValuationMethods.KnnShapley:
                return DatasetValuation.KnnShapleyClassification(parts, test, request.K, progress, cancellationToken, device);
            case ValuationMethods.AsymmetricKnnShapley:
                RequireClassification(request);
                var order = request.GroupOrder ?? parts.Select(p => p.Group).Distinct().ToList();
                return DatasetValuation.AsymmetricKnnShapley(parts, test, request.K, order, progress, cancellationToken, device);
            case ValuationMethods.TieredKnnShapley:
                RequireClassification(request);
                return Tiered(request, parts, test, progress, cancellationToken);
            case ValuationMethods.Logra:
                RequireClassification(request);
                return ValueLogra(parts, test, progress, cancellationToken);
            case ValuationMethods.SellerShapley:
                RequireClassification(request);
                var sellers = DatasetValuation.SellerShapleyClassification(parts, test, request.K, progress: progress, cancellationToken: cancellationToken, device: device);
                var names = sellers.GroupNames!;
                return new DatasetValuationResult(
                    [],
                    names.Select((name, g) => (name, g)).ToDictionary(x => x.name, x => sellers.Groups[x.g]),
                    names,
                    sellers.TotalUtility,
                    sellers.TestPoints);
            default:
                throw new ValuationRejectedException($"unknown valuation method '{request.Method}'");
        }
    }

    /// <summary>
    /// Tiers follow listing order: the request's group order when it has one (the catalog sends sellers by their earliest
    /// listing), else the order of the listings. Parts are valued in that order and their values put back in request order.
    /// </summary>
    private static DatasetValuationResult Tiered(
        RequestValuation request, IReadOnlyList<TrainingPart> parts, TabularDataset test, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        var order = request.GroupOrder ?? parts.Select(p => p.Group).Distinct().ToList();
        var groups = parts.Select(p => p.Group).Distinct().ToList();
        var precedence = GroupOrder.Resolve(groups, order);
        var rank = groups.Select((group, g) => (group, g)).ToDictionary(x => x.group, x => precedence[x.g], StringComparer.Ordinal);
        var listed = Enumerable.Range(0, parts.Count).OrderBy(i => rank[parts[i].Group]).ThenBy(i => i).ToArray();
        var tiered = DatasetValuation.TieredKnnShapley(listed.Select(i => parts[i]).ToList(), test, request.K, progress: progress, cancellationToken: cancellationToken).Values;
        var partValues = new ValueEstimate[parts.Count][];
        for (var position = 0; position < listed.Length; position++)
        {
            partValues[listed[position]] = tiered.PartValues[position];
        }

        return tiered with { PartValues = partValues };
    }

    private static void RequireClassification(RequestValuation request)
    {
        if (request.TaskType != ValuationMethods.Classification)
        {
            throw new ValuationRejectedException($"method '{request.Method}' values classification tasks only");
        }
    }

    // LoGra scores every test point in one streamed pass over the gradient store, so progress comes at the end.
    private static DatasetValuationResult ValueLogra(IReadOnlyList<TrainingPart> parts, TabularDataset test, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        try
        {
            var result = LograValuation.ValueParts(parts, test, new LograValuationOptions(), null, cancellationToken);
            progress?.Report(test.Rows);
            return result;
        }
        catch (LograException exception)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }
    }

    // JSON has no NaN; a standard error that cannot be estimated travels as null.
    private static double? Finite(double value) => double.IsFinite(value) ? value : null;

    private TabularDataset Load(DatasetReference reference, string name, int? expectedFeatures)
    {
        if (!DatasetFormats.TryParse(reference.Format, out var format))
        {
            throw new ValuationRejectedException($"{name}: unknown dataset format '{reference.Format}'");
        }

        try
        {
            using var stream = blobs.OpenRead(reference.BlobId);
            return DatasetReader.Load(stream, new DatasetReadOptions
            {
                SourceName = name,
                Format = format,
                LabelColumn = reference.LabelColumn,
                ExpectedFeatures = expectedFeatures,
            });
        }
        catch (DatasetFormatException exception)
        {
            throw new ValuationRejectedException(exception.Message, exception);
        }
        catch (FileNotFoundException exception)
        {
            throw new ValuationRejectedException($"{name}: data not found in the blob store ({reference.BlobId})", exception);
        }
    }
}
